"""State groups of the demo bot (their names are stored: renaming one is a migration)."""

from aiogram.fsm.state import State, StatesGroup


class MainMenu(StatesGroup):
    menu = State()


class FoodOrder(StatesGroup):
    hungry = State()
    cart = State()
    placed = State()
    not_hungry = State()


class Counter(StatesGroup):
    main = State()


class OrderStatus(StatesGroup):
    orders = State()


class DailySpecial(StatesGroup):
    main = State()


class Settings(StatesGroup):
    main = State()
