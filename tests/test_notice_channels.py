"""A notice is stored once, as (kind, params), and each channel gets it rendered from the catalog
in the conversation's language: every kind, every language, over the api channel's callback."""

from __future__ import annotations

from handoff import transitions
from handoff.models import Conversation, Message
from handoff.notices import LANGUAGES, render
from tests.conftest import settle


async def test_every_notice_reaches_the_api_callback_from_the_catalog(client, rt, say, make_agent, callback) -> None:
    ana, _ = await make_agent("Ana")
    bob, _ = await make_agent("Bob")
    expected = []
    for language in LANGUAGES:
        key = f"notices-{language}"
        await say("hello", conversation=key)
        await settle(rt)
        conversation = await Conversation.get(external_key=key)
        await Conversation.filter(id=conversation.id).update(language=language)
        ticket = await transitions.takeover(rt, conversation.id, ana)
        await transitions.reply(rt, ticket.id, ana, "Hi")
        await transitions.transfer(rt, ticket.id, ana, bob.id)
        await transitions.allow_ai(rt, ticket.id, bob)
        ticket = await transitions.takeover(rt, conversation.id, bob)
        await transitions.close(rt, ticket.id, bob)
        await settle(rt)
        expected += [(key, notice, render(notice, language, **params)) for notice, params in [
            ("waiting", {}), ("agent_joined", {"agent": "Ana"}), ("transferred", {"agent": "Bob"}),
            ("ai_resumed", {}), ("waiting", {}), ("closed", {})]]
        stored = await Message.filter(conversation_id=conversation.id, notice__not_isnull=True,
                                      direction="outgoing").order_by("id")
        assert [(m.notice, m.notice_params) for m in stored] == [
            ("waiting", {}), ("agent_joined", {"agent": "Ana"}), ("transferred", {"agent": "Bob"}),
            ("ai_resumed", {}), ("waiting", {}), ("closed", {})]
    sent = [(c["conversation"], c["status"], c["text"]) for c in callback.received if "status" in c]
    assert sent == expected
    assert len({text for _, notice, text in sent if notice == "closed"}) == len(LANGUAGES)  # translated
