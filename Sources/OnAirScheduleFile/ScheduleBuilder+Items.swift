import Foundation
import OnAirModel

/// Items and days: daily items, times in the schedule's zone, duplicate ids and overlaps.
extension ScheduleBuilder {
    // MARK: Items and days

    mutating func buildItemList(_ field: Field?, _ what: String, isDaily: Bool) -> [RawItem]? {
        guard let nodes = sequence(field, what) else { return field == nil ? [] : nil }
        var items: [RawItem] = []
        for node in nodes {
            if let item = buildItem(node, isDaily: isDaily) { items.append(item) }
        }
        // A list with a broken item is not used further, so that one typo yields one message.
        return items.count == nodes.count ? items : nil
    }

    mutating func buildItem(_ node: YAMLNode, isDaily: Bool) -> RawItem? {
        let what = isDaily ? "daily item" : "programme item"
        guard let f = fields(node, what, allowed: ["id", "title", "kind", "start", "end", "duration", "location", "online", "targets"],
                             required: ["id", "title", "start"])
        else { return nil }
        let before = diagnostics.count
        let id = slug(f["id"], "id of \(what)")
        let title = requiredText(f["title"], "title")
        let kind = optionalString(f["kind"], "kind")
        let location = optionalString(f["location"], "location")
        let online = f["online"].flatMap { bool($0, "online") } ?? true
        var start: LocalTimeOfDay?
        if let s = f["start"], let text = requiredText(s, "start") {
            start = LocalTimeOfDay(text)
            if start == nil { error(position(s.value), "start '\(text.prefix(40))' is not a time; write HH:MM or HH:MM:SS, optionally with an offset like 10:00+01:00") }
        }
        var end: RawItem.EndSpec?
        var endPosition = SourcePosition.start
        switch (f["end"], f["duration"]) {
        case (let e?, nil):
            endPosition = position(e.value)
            if let text = requiredText(e, "end") {
                if let t = LocalTimeOfDay(text) { end = .time(t, text) } else {
                    error(endPosition, "end '\(text.prefix(40))' is not a time; write HH:MM or HH:MM:SS, optionally with an offset")
                }
            }
        case (nil, let d?):
            endPosition = position(d.value)
            end = duration(d, "duration", allowZero: false).map { .duration($0) }
        case (let e?, _?):
            error(position(e.key), "\(what) has both end and duration; give one")
        case (nil, nil):
            error(position(node), "\(what) needs end or duration")
        }
        var targets: [(String, SourcePosition)]?
        if let t = f["targets"], let list = sequence(t, "targets") {
            targets = []
            for entry in list {
                guard case .scalar(let s) = entry else {
                    error(position(entry), "targets must list target names")
                    continue
                }
                targets?.append((s.string, position(entry)))
            }
            if online, targets?.isEmpty == true {
                error(position(t.value), "online item has no targets; list at least one, or set online: false")
            }
        }
        guard diagnostics.count == before, let id, let title, let start, let end else { return nil }
        return RawItem(id: id, title: title, kind: kind, location: location, online: online, start: start,
                       startPosition: position(f["start"]!.value), end: end, endPosition: endPosition,
                       targets: targets, position: position(node), idPosition: position(f["id"]!.value))
    }

    struct BuiltDay {
        var day: Day
        var datePosition: SourcePosition
        var items: [(item: RawItem, dailyID: String?)]
    }

    mutating func buildDays(_ field: Field?, dailies: [RawItem]?) -> [BuiltDay]? {
        guard let field, let nodes = sequence(field, "days") else { return nil }
        if nodes.isEmpty {
            error(position(field.value), "days must list at least one day")
            return nil
        }
        var days: [BuiltDay] = []
        var ok = true
        for node in nodes {
            guard let f = fields(node, "day", allowed: ["date", "title", "skip_daily", "programme"], required: ["date"]) else {
                ok = false
                continue
            }
            let before = diagnostics.count
            var date: LocalDate?
            if let d = f["date"], let text = requiredText(d, "date") {
                date = LocalDate(text)
                if date == nil { error(position(d.value), "date '\(text.prefix(40))' is not a calendar date; write YYYY-MM-DD") }
            }
            let title = optionalString(f["title"], "title of day")
            var skipped = Set<String>()
            if let s = f["skip_daily"], let list = sequence(s, "skip_daily") {
                let dailyIDs = Set((dailies ?? []).map(\.id))
                for entry in list {
                    let name = entry.string ?? ""
                    if dailies != nil, !dailyIDs.contains(name) {
                        error(position(entry), "skip_daily names '\(name.prefix(64))', which is not a daily item")
                    }
                    skipped.insert(name)
                }
            }
            let programme = buildItemList(f["programme"], "programme", isDaily: false)
            guard diagnostics.count == before, let date, let programme else {
                ok = false
                continue
            }
            var items = programme.map { (item: $0, dailyID: String?.none) }
            for daily in dailies ?? [] where !skipped.contains(daily.id) {
                var copy = daily
                copy.id = "\(daily.id)-\(date)"
                items.append((copy, daily.id))
            }
            days.append(BuiltDay(day: Day(date: date, title: title), datePosition: position(f["date"]!.value), items: items))
        }
        guard ok else { return nil }
        return checkWeek(days)
    }

    /// A schedule file is one week: its days are distinct, in order, and within seven days
    /// of the first, so a mistyped month or year cannot schedule a stream months away.
    /// Returns the days that pass, so a misplaced day does not cause follow-on errors.
    mutating func checkWeek(_ days: [BuiltDay]) -> [BuiltDay] {
        guard let first = days.first?.day.date else { return days }
        let last = first.adding(days: 6)
        var previous: LocalDate?
        var accepted: [BuiltDay] = []
        for day in days {
            let date = day.day.date
            if let previous, date == previous {
                error(day.datePosition, "date \(date) appears twice in days")
            } else if let previous, date < previous {
                error(day.datePosition, "date \(date) comes before the previous day \(previous); list days in order")
            } else if date > last {
                error(day.datePosition, "date \(date) is outside the week \(first) to \(last) that the first day opens; a schedule file covers at most 7 days")
            } else {
                accepted.append(day)
                previous = date
            }
        }
        return accepted
    }

    /// Resolves an item's times on its day and checks its target names.
    mutating func place(_ raw: RawItem, on day: Day, dailyID: String?, zone: TimeZone,
                        allTargets: [String], known: Set<String>) -> Item? {
        let before = diagnostics.count
        let start = resolve(raw.start, text: nil, field: "start", of: raw, on: day.date, zone: zone, at: raw.startPosition)
        var end: Date?
        switch raw.end {
        case .duration(let seconds):
            end = start.map { $0.addingTimeInterval(TimeInterval(seconds)) }
        case .time(let time, let text):
            end = resolve(time, text: text, field: "end", of: raw, on: day.date, zone: zone, at: raw.endPosition)
            if let s = start, let e = end, e <= s {
                error(raw.endPosition, "end \(text) is not after start of '\(raw.id)'; for an item that runs past midnight, give a duration instead")
            }
        }
        var targets: [String] = []
        if let list = raw.targets {
            for (name, pos) in list {
                if !known.contains(name) {
                    // A daily item is checked once, on its first day, not once per day.
                    if dailyID == nil || !diagnostics.contains(where: { $0.line == pos.line && $0.column == pos.column }) {
                        error(pos, "unknown target '\(name.prefix(64))'; targets are: \(allTargets.joined(separator: ", "))")
                    }
                } else if targets.contains(name) {
                    error(pos, "target '\(name)' is listed twice")
                } else {
                    targets.append(name)
                }
            }
        } else {
            targets = allTargets
        }
        guard diagnostics.count == before, let start, let end else { return nil }
        return Item(id: raw.id, title: raw.title, kind: raw.kind, location: raw.location, online: raw.online,
                    day: day.date, start: start, end: end, targets: raw.online ? targets : [],
                    dailyID: dailyID, position: raw.position)
    }

    mutating func resolve(_ time: LocalTimeOfDay, text: String?, field: String, of raw: RawItem, on date: LocalDate,
                          zone: TimeZone, at pos: SourcePosition) -> Date? {
        let result = WallClock.instant(date: date, time: time, zone: zone)
        if case .success(let instant) = result { return instant }
        let full = WallClock.clockText(time.secondsOfDay)
        let clock = time.secondsOfDay % 60 == 0 ? String(full.prefix(5)) : full
        switch result {
        case .success(let instant):
            return instant
        case .failure(.gap):
            error(pos, "\(field) \(clock) of '\(raw.id)' does not exist on \(date) in \(zone.identifier): the clocks jump forward over it; choose another time")
        case .failure(.ambiguous(let offsets)):
            let options = offsets.map { "\"\(clock)\(WallClock.offsetText($0))\"" }.joined(separator: " or ")
            error(pos, "\(field) \(clock) of '\(raw.id)' is ambiguous on \(date) in \(zone.identifier): the clocks fall back and pass it twice; write \(options)")
        case .failure(.offsetNotInForce(let offset)):
            error(pos, "\(field) of '\(raw.id)' gives offset \(WallClock.offsetText(offset)), which \(zone.identifier) does not use at \(clock) on \(date)")
        }
        return nil
    }

    mutating func checkDuplicateIDs(days: [BuiltDay], dailies: [RawItem]) {
        var seen: [String: SourcePosition] = [:]
        for daily in dailies {
            if let first = seen[daily.id] {
                error(daily.idPosition, "duplicate id '\(daily.id)'; first used at line \(first.line)")
            } else {
                seen[daily.id] = daily.idPosition
            }
        }
        for day in days {
            for (item, dailyID) in day.items where dailyID == nil {
                if let first = seen[item.id] {
                    error(item.idPosition, "duplicate id '\(item.id)'; first used at line \(first.line)")
                } else {
                    seen[item.id] = item.idPosition
                }
            }
        }
        for day in days {
            for (item, dailyID) in day.items where dailyID != nil {
                if let first = seen[item.id] {
                    error(first, "id '\(item.id)' is also the id of daily item '\(dailyID!)' on \(day.day.date)")
                }
            }
        }
    }

    /// Two online items that share a target must not be on air at the same time: the platform
    /// would get a start for one while the other is live, and the first stop would end both.
    mutating func checkOverlaps(_ items: [Item], zone: TimeZone) {
        // Positions in `items`, not copies of them: a 10,000-item week must stay small.
        var byTarget: [String: [Int]] = [:]
        for (position, item) in items.enumerated() where item.online {
            for target in item.targets { byTarget[target, default: []].append(position) }
        }
        var reported = Set<String>()
        for (target, list) in byTarget.sorted(by: { $0.key < $1.key }) {
            let sorted = list.sorted { (items[$0].start, items[$0].id) < (items[$1].start, items[$1].id) }
            var live: Item?
            for item in sorted.lazy.map({ items[$0] }) {
                if let current = live, item.start < current.end {
                    let key = "\(current.id)|\(item.id)"
                    if !reported.contains(key) {
                        reported.insert(key)
                        error(item.position, "'\(item.id)' overlaps '\(current.id)' (line \(current.position.line)) on target '\(target)': both online at \(WallClock.localText(item.start, in: zone))")
                    }
                    if item.end > current.end { live = item }
                } else {
                    live = item
                }
            }
        }
    }
}
