"""The tutorial's chat, walked through local Telegram's user API on a running site.

Run by docs/tutorial/check.py inside the tutorial's virtualenv (botdialogs.testing comes
from the installed wheel), in the site's folder: ``python walk.py http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request

from botdialogs.testing import LocalTelegram

MARK_BAKING = (
    "from pizza.models import Order; order = Order.objects.get(); "
    "order.status = 'baking'; order.save()"
)


def fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=15) as response:
        assert response.status == 200, (url, response.status)
        return response.headers.get_content_type(), response.read()


def main(url: str) -> None:
    chat = LocalTelegram(url).chat(user_id=1001, first_name="Ann")
    chat.send("/start")
    menu = chat.wait_for(lambda m: (m.text or "").startswith("Hello, Ann! Order: none yet"))
    assert ["Order a pizza"] in menu.buttons, menu.buttons
    print("   /start: the menu window")

    chat.press("Order a pizza")
    confirm = chat.wait_for_text("One margherita?")
    assert confirm.message_id == menu.message_id, "the window is edited in place"
    chat.press("Yes, please")
    chat.wait_for(lambda m: "status: received" in (m.text or ""))
    print("   two windows walked: the order is placed")

    chat.wait_for(lambda m: "Your pizza is in the oven." in (m.text or ""))
    print("   the dialog timer fired (after=2)")

    # The kitchen changes the order (here from a shell): post_save updates the dialog.
    subprocess.run([sys.executable, "manage.py", "shell", "-c", MARK_BAKING], check=True)
    chat.wait_for(lambda m: "status: baking" in (m.text or ""))
    print("   the post_save signal updated the dialog")

    chat.send("/feedback")
    chat.wait_for_text("How was your pizza?")
    chat.press("4 ★")
    chat.wait_for_text("Thank you for the 4 stars!")
    print("   nodes: /feedback asked and thanked, one node per step")

    kind, page = fetch(f"{url}/localtg/")
    assert kind == "text/html", kind
    statics = re.findall(rb'(?:href|src)="(/static/[^"]+)"', page)
    assert statics, "the playground page links its static files"
    chat_kind, chat_page = fetch(f"{url}/localtg/default/1001/")
    assert chat_kind == "text/html", chat_kind
    statics += re.findall(rb'(?:href|src)="(/static/[^"]+)"', chat_page)
    # The live monitor's page is for staff; its files are served to anyone, like the admin's.
    statics += [b"/static/botdialogs/monitor.js", b"/static/botdialogs/monitor.css"]
    expected = {".css": "text/css", ".js": "text/javascript"}
    for path in sorted(set(statics)):
        kind, body = fetch(url + path.decode())
        suffix = path.decode()[path.rfind(b".") :]
        assert kind == expected.get(suffix, kind) and body, (path, kind)
        print(f"   {path.decode()}: 200 {kind}")
    assert any(path.endswith(b"chat.js") for path in statics), statics


if __name__ == "__main__":
    main(sys.argv[1])
