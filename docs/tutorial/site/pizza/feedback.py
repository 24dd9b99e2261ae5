from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from pydantic import BaseModel

from botdialogs.nodes import NoData, Node, NodeRegistry, NodeRouter

PREFIX = "fb:"  # the callback data of these buttons (aiogram_dialog's never start so)
registry = NodeRegistry()


@dataclass
class Context:
    """What each step gets besides its own data."""

    bot: Bot


class Rating(BaseModel):
    stars: int


@registry.register("feedback.ask")  # the key stored in the database: never a class path
class AskRating(Node[Context, CallbackQuery, int, NoData]):
    async def on_enter(self, user_id: int, ctx: Context) -> None:
        stars = [
            InlineKeyboardButton(text=f"{n} ★", callback_data=f"{PREFIX}{n}") for n in range(1, 6)
        ]
        markup = InlineKeyboardMarkup(inline_keyboard=[stars])
        await ctx.bot.send_message(user_id, "How was your pizza?", reply_markup=markup)

    async def on_event(self, user_id: int, event: CallbackQuery, ctx: Context) -> Node:
        pressed = (event.data or "").removeprefix(PREFIX)
        return Thanks(Rating(stars=int(pressed))) if pressed.isdigit() else self


@registry.register("feedback.thanks")
class Thanks(Node[Context, CallbackQuery, int, Rating]):
    async def on_enter(self, user_id: int, ctx: Context) -> None:
        await ctx.bot.send_message(user_id, f"Thank you for the {self.data.stars} stars!")

    async def on_event(self, user_id: int, event: CallbackQuery, ctx: Context) -> Node:
        return self


feedback = NodeRouter(
    registry,
    start=lambda user_id: AskRating(),
    user_id_of=lambda event: event.from_user.id,
    context_factory=Context,
    name="feedback",
    first_event_to_start=False,
)


async def ask_for_feedback(message: Message) -> None:
    """/feedback: the user enters the first node (in this update's unit of work)."""
    await feedback.user(message.from_user.id, chat_id=message.chat.id).ato(AskRating())
