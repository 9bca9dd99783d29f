// Generated from handoff.events.EventKind by handoff.events.kinds_js(); do not edit.
export const KIND = Object.freeze({
  MESSAGE_CREATED: "message.created",
  MESSAGE_UPDATED: "message.updated",
  TICKET_CREATED: "ticket.created",
  TICKET_UPDATED: "ticket.updated",
  TICKET_SUMMARY: "ticket.summary",
  TICKET_MESSAGE: "ticket.message",
  TICKET_ASSIGNED: "ticket.assigned",
  MENTION: "mention",
  CONVERSATION_UPDATED: "conversation.updated",
  CONVERSATION_LABELS: "conversation.labels",
  TIMELINE_EVENT: "timeline.event",
  TYPING: "typing",
  AGENT_PRESENCE: "agent.presence",
  STREAM_READY: "stream.ready",
  STREAM_LAGGED: "stream.lagged",
  STREAM_RESYNC: "stream.resync",
});
