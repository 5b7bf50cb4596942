#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many threads to use.
public enum Parallelism {
    /// The cores this process may run on.
    public static var cores: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// The most threads a run uses: memory stays bounded by threads × block size.
    public static let maximum = 64

    /// `MIGSNAP_THREADS` if it is set (a whole number, 1 to 64), else all cores. An invalid value is
    /// an error message, so that a typo is not silently one thread or a hundred.
    public static func fromEnvironment() -> Result<Int, ParallelismError> {
        guard let text = getenv("MIGSNAP_THREADS").map({ String(cString: $0) }), !text.isEmpty else {
            return .success(min(cores, maximum))
        }
        guard let value = Int(text), (1...maximum).contains(value) else {
            return .failure(ParallelismError(description: "MIGSNAP_THREADS=\(text) is not a number of threads from 1 to \(maximum)"))
        }
        return .success(value)
    }
}

public struct ParallelismError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A fixed set of threads that run numbered jobs handed to them in order, and report each one
/// done. The caller owns the data a job works on (one slot per job in flight), and calls
/// `shutdown()` before it lets that data go.
final class WorkerPool: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let jobReady: UnsafeMutablePointer<pthread_cond_t>
    private let jobDone: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by mutex.
    private var queue: [Int] = []
    private var done: Set<Int> = []
    private var closing = false

    private var threads: [pthread_t] = []
    private let work: (_ worker: Int, _ job: Int) -> Void

    /// Starts `count` threads; `work(worker, job)` runs on them, `worker` in 0..<count, so each
    /// thread can own its own C state (a compressor is not shared between threads).
    init(threads count: Int, work: @escaping (_ worker: Int, _ job: Int) -> Void) throws {
        mutex = .allocate(capacity: 1)
        jobReady = .allocate(capacity: 1)
        jobDone = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(jobReady, nil)
        pthread_cond_init(jobDone, nil)
        self.work = work
        for worker in 0..<count {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, worker: worker))
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { argument in
                let start = Unmanaged<WorkerStart>.fromOpaque(argument!).takeRetainedValue()
                start.pool.run(worker: start.worker)
                return nil
            }, box.toOpaque())
            guard status == 0 else {
                box.release()
                shutdown()
                throw GzipError(.io, "cannot start a compression thread (\(String(cString: strerror(status))))")
            }
            threads.append(thread)
        }
    }

    deinit {
        shutdown()
        pthread_cond_destroy(jobDone)
        pthread_cond_destroy(jobReady)
        pthread_mutex_destroy(mutex)
        jobDone.deallocate()
        jobReady.deallocate()
        mutex.deallocate()
    }

    /// Queues `job`; the first idle thread takes it.
    func submit(_ job: Int) {
        pthread_mutex_lock(mutex)
        queue.append(job)
        pthread_cond_signal(jobReady)
        pthread_mutex_unlock(mutex)
    }

    /// Waits until `job` has run.
    func wait(for job: Int) {
        pthread_mutex_lock(mutex)
        while !done.contains(job) {
            pthread_cond_wait(jobDone, mutex)
        }
        done.remove(job)
        pthread_mutex_unlock(mutex)
    }

    /// Lets the threads finish the jobs they hold, drops queued ones, and joins them. Idempotent.
    func shutdown() {
        pthread_mutex_lock(mutex)
        closing = true
        queue.removeAll()
        pthread_cond_broadcast(jobReady)
        pthread_mutex_unlock(mutex)
        for thread in threads {
            pthread_join(thread, nil)
        }
        threads.removeAll()
    }

    private func run(worker: Int) {
        pthread_mutex_lock(mutex)
        while true {
            if !queue.isEmpty {
                let job = queue.removeFirst()
                pthread_mutex_unlock(mutex)
                work(worker, job)
                pthread_mutex_lock(mutex)
                done.insert(job)
                pthread_cond_broadcast(jobDone)
            } else if closing {
                pthread_mutex_unlock(mutex)
                return
            } else {
                pthread_cond_wait(jobReady, mutex)
            }
        }
    }
}

private final class WorkerStart {
    let pool: WorkerPool
    let worker: Int

    init(pool: WorkerPool, worker: Int) {
        self.pool = pool
        self.worker = worker
    }
}
