from botdialogs.testing import LocalTelegram


def test_order_a_pizza(server, transactional_db):
    chat = LocalTelegram(server.url).chat(user_id=2002, first_name="Bob")
    chat.send("/start")
    menu = chat.wait_for(lambda m: m.text.startswith("Hello, Bob!"))
    assert ["Order a pizza"] in menu.buttons

    chat.press("Order a pizza")
    confirm = chat.wait_for_text("One margherita?")
    assert confirm.message_id == menu.message_id  # the window was edited in place
    chat.press("Yes, please")
    chat.wait_for(lambda m: "status: received" in m.text)
