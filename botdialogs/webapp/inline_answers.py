"""``answerWebAppQuery``: a Mini App opened from inline mode sends its result to the chat."""

from __future__ import annotations

from aiogram.types import InlineQueryResultUnion, SentWebAppMessage

from botdialogs.webapp.exceptions import MalformedInitData


async def aanswer_web_app_query(
    bot: str, query_id: str, result: InlineQueryResultUnion
) -> SentWebAppMessage:
    """Answer the Mini App query ``query_id`` (``request.telegram_user.query_id``) with ``result``.

    Telegram posts the result in the chat the inline query came from, on the user's behalf.
    """
    from botdialogs.engine.bots import get_bot

    if not query_id:
        raise MalformedInitData("initData has no query_id: the app was not opened inline")
    return await get_bot(bot).answer_web_app_query(web_app_query_id=query_id, result=result)


def answer_web_app_query(
    bot: str, query_id: str, result: InlineQueryResultUnion
) -> SentWebAppMessage:
    """:func:`aanswer_web_app_query` for sync code (views)."""
    from botdialogs.engine.sync import call_async

    return call_async(aanswer_web_app_query, bot, query_id, result)
