// SPDX-License-Identifier: Apache-2.0
import CSVAKitCore

/// What an actor is about to do at a schedule point (docs/TESTING.md, "Every
/// interleaving"). The explorer runs one actor at a time and may switch to
/// another at each point; two points conflict when they touch the same
/// object and one of them changes it.
@_spi(Engine) public enum ScheduleOp: UInt8, Sendable, CustomStringConvertible {
    /// An actor's first step: touches nothing.
    case start
    /// A load of a table entry, or of a frame's identity (the walker's
    /// seqcount read, the oracle's).
    case read
    /// A store to a table entry, a walker's A/D cmpxchg, a table zeroed, a
    /// frame's identity changed (allocation, free).
    case write
    /// A lock taken: the actor cannot go on while another holds it.
    case acquire
    /// A lock released.
    case release
    /// One turn of a wait loop that found nothing to do (a fence waiting
    /// for walks in flight, a flush waiting for its ticket): the actor
    /// waits until another actor changes something.
    case spin

    /// Whether the point changes its object.
    @inlinable public var changes: Bool { self == .write || self == .acquire || self == .release }

    /// "read", "write", ...
    public var description: String {
        switch self {
        case .start: "start"
        case .read: "read"
        case .write: "write"
        case .acquire: "acquire"
        case .release: "release"
        case .spin: "spin"
        }
    }
}

/// One schedule point: what the actor is about to do, to which object.
///
/// Objects are tagged by space in the top byte (`ScheduleObject`): a frame
/// (its table entries and its identity are one object), a lock, a wait.
@_spi(Engine) public struct SchedulePoint: Sendable, Equatable {
    /// What the actor does.
    public var op: ScheduleOp
    /// What it touches (`ScheduleObject`).
    public var object: UInt64
    /// The entry index for a frame, the rank for a lock.
    public var detail: UInt64

    /// A point.
    @inlinable public init(op: ScheduleOp, object: UInt64, detail: UInt64 = 0) {
        self.op = op
        self.object = object
        self.detail = detail
    }

    /// Whether the two points conflict: the same object, and one changes it.
    @inlinable public func conflicts(with other: SchedulePoint) -> Bool {
        object == other.object && object != 0 && (op.changes || other.op.changes)
    }
}

/// The object spaces of schedule points.
@_spi(Engine) public enum ScheduleObject {
    /// Frame `pfn`: its entries, its bytes and its identity.
    @inlinable public static func frame(_ pfn: UInt32) -> UInt64 { 1 << 56 | UInt64(pfn) }
    /// A lock, by the address of its explorer token.
    @inlinable public static func lock(_ id: UInt64) -> UInt64 { 2 << 56 | id & 0xff_ffff_ffff_ffff }
    /// A wait loop's subject (the IOMMU whose walks a fence waits for, ...).
    @inlinable public static func wait(_ id: UInt64) -> UInt64 { 3 << 56 | id & 0xff_ffff_ffff_ffff }
    /// The space of `object`: 1 frame, 2 lock, 3 wait.
    @inlinable public static func space(_ object: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: object >> 56) }
    /// The object's id within its space.
    @inlinable public static func id(_ object: UInt64) -> UInt64 { object & 0xff_ffff_ffff_ffff }
}

/// The engine's schedule points. Each call is where another actor may run
/// first; in the ordinary build (without the `ScheduleExplorer` trait or
/// CMake's `SVAKIT_SCHEDULE_EXPLORER`) every one compiles to nothing, and in
/// an explorer build it is one thread-local load on any thread the explorer
/// did not start.
@_spi(Engine) public enum SchedulePoints {
    /// Whether this build has the points (`SVAKIT_SCHEDULE_POINTS`).
    public static var compiledIn: Bool {
        #if SVAKIT_SCHEDULE_POINTS
        true
        #else
        false
        #endif
    }

    /// A point: on an explorer's actor thread, hands the choice of who runs
    /// next to the explorer and returns when this actor is chosen again.
    @inlinable @inline(__always)
    public static func point(_ op: ScheduleOp, _ object: UInt64, _ detail: UInt64 = 0) {
        #if SVAKIT_SCHEDULE_POINTS
        if let actor = svk_sched_current() {
            ScheduleActor.yield(actor, SchedulePoint(op: op, object: object, detail: detail))
        }
        #endif
    }

    /// A wait loop: while `condition()` holds, wait. On an explorer's actor
    /// each turn is one `spin` point and the condition is read with the
    /// points inside it suppressed (one atomic look, as a loop's load is);
    /// the actor is then not run again until another actor changes
    /// something. Elsewhere it spins with `sched_yield`. The condition may
    /// take a lock only if no actor holds that lock across a schedule point
    /// (checked: the explorer traps rather than block its one running thread).
    @inlinable @inline(__always)
    public static func spinWhile(_ object: UInt64, _ condition: () -> Bool) {
        #if SVAKIT_SCHEDULE_POINTS
        if let actor = svk_sched_current() {
            while ScheduleActor.checkSuppressed(actor, condition) {
                ScheduleActor.yield(actor, SchedulePoint(op: .spin, object: object))
            }
            return
        }
        #endif
        while condition() { sched_yield_() }
    }

    /// Starts `body` as a new actor of the exploration the calling thread
    /// plays in (schedule_work's kworker, a timer): it may run at any later
    /// point. Returns false, having run nothing, on any other thread, where
    /// the caller does what it does without an explorer.
    public static func spawn(_ name: String, _ body: @escaping () -> Void) -> Bool {
        #if SVAKIT_SCHEDULE_POINTS
        if let actor = svk_sched_current() {
            ScheduleActor.spawn(actor, name: name, body)
            return true
        }
        #endif
        return false
    }

    /// Whether the calling thread is one of an explorer's actors.
    public static var onActor: Bool {
        #if SVAKIT_SCHEDULE_POINTS
        svk_sched_current() != nil
        #else
        false
        #endif
    }
}
