import Foundation

/// Work on a thread of its own, beside the caller's; `wait()` gives its result.
public final class Background<T>: @unchecked Sendable {
    private let work: () throws -> T
    private var result: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)

    public init(_ work: @escaping () throws -> T) {
        self.work = work
        Thread { [self] in
            result = Result { try self.work() }
            done.signal()
        }.start()
    }

    /// Blocks until the work is done; its value or its error. May be called more than once.
    public func wait() throws -> T {
        done.wait()
        done.signal()
        return try result!.get()
    }
}

/// A yes/no that one thread sets and others read.
final class SharedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var state: Bool

    init(_ value: Bool) {
        state = value
    }

    var value: Bool {
        get { lock.withLock { state } }
        set { lock.withLock { state = newValue } }
    }
}
