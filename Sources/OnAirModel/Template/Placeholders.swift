import Foundation

/// The placeholders a templated request may use; anything else is a typo the operator should hear about.
public let knownPlaceholders: Set<String> = [
    "item.id", "item.title", "item.kind", "item.location", "item.start", "item.end",
    "day.date", "day.title", "event.id", "event.title", "action", "scheduled_at", "webhook_id",
]
