#pragma once

#include "base/result.h"

#include <QDeadlineTimer>
#include <QMutex>
#include <QMutexLocker>
#include <QObject>
#include <QPointer>
#include <QTimer>
#include <QWaitCondition>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

class QThreadPool;

namespace ifs {

class BackgroundJobBase;

/// Milliseconds on a monotonic clock: what the progress throttle reads. Tests pass a clock they
/// move by hand.
using JobClock = std::function<qint64()>;

/// How a job's progress value travels to the GUI thread.
enum class ProgressMode {
    Latest, ///< a state the worker keeps updating (counts, a step): the GUI gets a copy of it
    Drain, ///< items that pile up (steps): the GUI takes them and the worker starts afresh
};

/// The progress type of a job that reports none.
struct NoProgress
{
};

namespace detail {

/// What one run's worker and its job share; whichever lets go last frees it. The job's side is
/// `receiver`: set while the run is the job's current one and cleared, under the mutex, when the
/// job drops the run, so that the worker never posts to an object that is gone.
class JobRunBase
{
public:
    virtual ~JobRunBase();
    JobRunBase(const JobRunBase &) = delete;
    JobRunBase &operator=(const JobRunBase &) = delete;

    std::atomic_bool cancel{false};
    const quint64 serial; ///< tells this run's wake-ups from an earlier run's

    QMutex mutex; // guards everything below
    QWaitCondition endedCondition;
    BackgroundJobBase *receiver = nullptr;
    bool ended = false; ///< the worker stored its outcome: nothing more comes
    bool progressDirty = false; ///< progress published and not delivered yet
    bool progressWake = false; ///< a wake-up for progress is queued, or the throttle timer runs
    bool eventWake = false; ///< a wake-up for events or the end is queued

    /// Worker side, mutex held: wakes the job for new progress (once until it has looked).
    void wakeForProgressLocked();
    /// Worker side, mutex held: wakes the job for a posted event or the end.
    void wakeForEventLocked();

protected:
    explicit JobRunBase(quint64 serialNumber)
        : serial(serialNumber)
    { }

private:
    void postWakeLocked();
};

/// A run's progress and posted events, typed.
template<typename P>
class JobProgressRun : public JobRunBase
{
public:
    struct Event
    {
        std::optional<P> progress; ///< published before the call: delivered first
        std::function<void()> call;
    };

    JobProgressRun(quint64 serialNumber, ProgressMode progressMode)
        : JobRunBase(serialNumber)
        , mode(progressMode)
    { }

    /// Mutex held.
    P takeProgressLocked()
    {
        progressDirty = false;
        return mode == ProgressMode::Drain ? std::exchange(progress, P{}) : progress;
    }

    const ProgressMode mode;
    P progress; // guarded by the mutex
    std::deque<Event> events; // guarded by the mutex
};

/// A run with its outcome.
template<typename T, typename P>
class JobRun final : public JobProgressRun<P>
{
public:
    using JobProgressRun<P>::JobProgressRun;

    /// Worker side, last: stores the outcome and wakes the job for it.
    void finish(Result<T> result)
    {
        QMutexLocker lock(&this->mutex);
        outcome.emplace(std::move(result));
        this->ended = true;
        this->endedCondition.wakeAll();
        this->wakeForEventLocked();
    }

    std::optional<Result<T>> outcome; // written once, before `ended`
};

/// The Error for the exception being handled (call inside a catch block): the worker's last line
/// of defence, so that nothing escapes into the thread pool.
Error currentExceptionError();

} // namespace detail

/// What the work function sees of its run, on the worker thread.
template<typename P>
class JobContext
{
public:
    explicit JobContext(detail::JobProgressRun<P> &run)
        : m_run(run)
    { }

    /// The job asked the run to stop (cancel, supersede, destruction): return cancelled() soon.
    bool isCancelled() const { return m_run.cancel.load(std::memory_order_relaxed); }
    /// The run's cancel flag, for core calls that poll one.
    const std::atomic_bool *cancelFlag() const { return &m_run.cancel; }
    /// What the work returns when it stopped because isCancelled().
    static Error cancelled(const QString &message = {})
    {
        return Error{message, ErrorCode::Cancelled};
    }

    /// Replaces the progress value.
    void setProgress(P value)
    {
        updateProgress([&value](P &progress) { progress = std::move(value); });
    }
    /// Changes the progress value in place (`update(P &)`, under the run's lock: keep it short).
    template<typename Update>
    void updateProgress(Update &&update)
    {
        QMutexLocker lock(&m_run.mutex);
        if (!m_run.receiver)
            return; // dropped: nothing of it is delivered, so nothing is kept
        update(m_run.progress);
        m_run.progressDirty = true;
        m_run.wakeForProgressLocked();
    }
    /// Runs `call` on the job's thread, soon and unthrottled, after the progress published before
    /// it; dropped with the run. `call` may use the job's owner: it never runs after its job.
    void post(std::function<void()> call)
    {
        QMutexLocker lock(&m_run.mutex);
        if (!m_run.receiver)
            return; // dropped: nothing of it is delivered, so nothing is kept
        typename detail::JobProgressRun<P>::Event event;
        if (m_run.progressDirty)
            event.progress = m_run.takeProgressLocked();
        event.call = std::move(call);
        m_run.events.push_back(std::move(event));
        m_run.wakeForEventLocked();
    }

private:
    detail::JobProgressRun<P> &m_run;
};

/// The part of BackgroundJob that is not a template: the current run, supersede, the throttle and
/// the wake-ups from the worker (Qt's queued calls need a QObject, which a template cannot be).
class BackgroundJobBase : public QObject
{
    Q_OBJECT

public:
    static constexpr int kDefaultProgressIntervalMs = 100;

    ~BackgroundJobBase() override;

    /// A run was started and its terminal call has not come yet.
    bool isRunning() const { return m_run != nullptr; }
    /// Asks the current run to stop. Its work sees isCancelled() and returns
    /// JobContext::cancelled(), which ends the run with onCancelled(); a run that completes
    /// anyway ends as it would have.
    void requestCancel();
    bool isCancelRequested() const;
    /// Drops the current run: it is cancelled and delivers nothing more, not even a terminal
    /// call; it ends on its own thread.
    void discard();
    /// Blocks until the current run's worker has returned; false on timeout. For tests and for
    /// closing: the GUI never waits for a run otherwise. The terminal call still comes from the
    /// event loop.
    bool waitForWorker(QDeadlineTimer deadline = QDeadlineTimer(QDeadlineTimer::Forever)) const;

    /// Where the runs go; the global pool unless set (a run in progress keeps its pool).
    void setThreadPool(QThreadPool *pool) { m_pool = pool; }
    QThreadPool *threadPool() const;
    /// Progress is delivered at most once per interval (default 100 ms: ~10 Hz).
    void setProgressInterval(int milliseconds) { m_interval = milliseconds; }
    int progressInterval() const { return m_interval; }
    /// The clock of the throttle (tests); a monotonic one by default.
    void setClock(JobClock clock) { m_clock = std::move(clock); }

    /// An application-wide pool named `name`, created on first use with `maxThreads` threads, for
    /// runs that must not hold the global pool's few threads for minutes (training, the health
    /// check) or that want their own (previews). It lives as long as the application object, so
    /// that a run dropped by a destroyed job can still end; the application waits for it last.
    static QThreadPool *dedicatedPool(const QString &name, int maxThreads);
    /// Blocks until every run on the dedicated pools and the global pool has ended: at exit,
    /// after the windows are gone (their jobs dropped their runs) and while the application
    /// object still exists for the runs that finish (a stopped training ends its batch).
    static void waitForAllRuns();

protected:
    explicit BackgroundJobBase(QObject *parent);

    quint64 nextSerial() { return ++m_serial; }
    /// Makes `run` the current run (dropping the one before) and starts `body` on the pool.
    void launch(std::shared_ptr<detail::JobRunBase> run, std::function<void()> body);
    bool isCurrent(const detail::JobRunBase &run) const { return m_run.get() == &run; }

    /// Delivers the run's posted events (each after the progress published before it) and, with
    /// `progress`, its pending progress. Stops when a handler destroyed the job or replaced the
    /// run.
    virtual void deliverEvents(detail::JobRunBase &run, bool progress) = 0;
    /// Delivers the run's outcome: the terminal call. The run is no longer current.
    virtual void deliverOutcome(detail::JobRunBase &run) = 0;

private:
    friend class detail::JobRunBase;

    void wake(quint64 serial);
    void process();
    void processOnce();
    void drop();
    qint64 now() const;

    std::shared_ptr<detail::JobRunBase> m_run;
    QThreadPool *m_pool = nullptr;
    JobClock m_clock;
    int m_interval = kDefaultProgressIntervalMs;
    std::optional<qint64> m_lastProgress; // when progress was last delivered
    QTimer m_throttle; // delivers progress held back by the interval
    quint64 m_serial = 0;
    bool m_delivering = false; // a handler is running: a nested wake-up only asks for another pass
    bool m_deliverAgain = false;
};

/// A background job of the GUI: runs a work function on a worker thread, one run at a time, and
/// brings what it reports to the thread the job lives in through the handlers set below.
///
/// The contract, the same for every job of the app:
/// - A run ends with exactly one terminal call, unless it is dropped: onFinished(value) when the
///   work returns a value, onCancelled() when it returns an ErrorCode::Cancelled (or Superseded)
///   error, onFailed(error) for any other error or an exception (the worker is the exception
///   boundary). When it comes, the worker has returned, everything the run reported has been
///   delivered, and isRunning() is false, so the handler may start the next run.
/// - Cancel is a std::atomic_bool the work polls (JobContext::isCancelled() or cancelFlag()).
/// - Supersede: start() while a run is going drops that run, as discard() does: it is cancelled
///   and nothing of it is delivered any more, not even a terminal call; it ends on its own.
/// - Progress (onProgress) comes at most once per progressInterval(), the newest value; posted
///   calls come in order, unthrottled, each after the progress published before it.
/// - Ownership: the job and the worker share the run's state and nothing else; whichever lets go
///   last frees it. Destroying the job (with its owner) drops the run: it never waits, and no
///   handler runs after the job is gone. A run that cannot be interrupted finishes in the
///   background and its result is dropped.
///
/// `T` is what a run produces, `P` its progress (NoProgress: none).
template<typename T, typename P = NoProgress>
class BackgroundJob final : public BackgroundJobBase
{
public:
    using Work = std::function<Result<T>(JobContext<P> &)>;

    explicit BackgroundJob(QObject *parent = nullptr, ProgressMode mode = ProgressMode::Latest)
        : BackgroundJobBase(parent)
        , m_mode(mode)
    { }

    void onProgress(std::function<void(const P &)> handler) { m_onProgress = std::move(handler); }
    void onFinished(std::function<void(T)> handler) { m_onFinished = std::move(handler); }
    void onFailed(std::function<void(const Error &)> handler) { m_onFailed = std::move(handler); }
    void onCancelled(std::function<void()> handler) { m_onCancelled = std::move(handler); }

    /// Starts `work` on the pool, dropping the run before it (see the class comment).
    void start(Work work)
    {
        auto run = std::make_shared<Run>(nextSerial(), m_mode);
        launch(run, [run, work = std::move(work)] {
            // Dropped before it started: the work is not even begun.
            if (run->cancel.load()) {
                run->finish(JobContext<P>::cancelled());
                return;
            }
            JobContext<P> context(*run);
            std::optional<Result<T>> result;
            try {
                result.emplace(work(context));
            } catch (...) {
                result.emplace(detail::currentExceptionError());
            }
            run->finish(std::move(*result));
        });
    }

private:
    using Run = detail::JobRun<T, P>;

    void deliverEvents(detail::JobRunBase &base, bool withProgress) override
    {
        Run &run = static_cast<Run &>(base);
        std::deque<typename Run::Event> events;
        std::optional<P> progress;
        {
            QMutexLocker lock(&run.mutex);
            events.swap(run.events);
            if (withProgress && run.progressDirty)
                progress = run.takeProgressLocked();
        }
        const QPointer<QObject> self(this);
        // Handlers are called through copies: one may destroy the job, and with it the original.
        for (typename Run::Event &event : events) {
            if (event.progress && m_onProgress) {
                const auto onProgress = m_onProgress;
                onProgress(*event.progress);
            }
            if (!self || !isCurrent(run))
                return;
            if (event.call)
                event.call();
            if (!self || !isCurrent(run))
                return;
        }
        if (progress && m_onProgress) {
            const auto onProgress = m_onProgress;
            onProgress(*progress);
        }
    }

    void deliverOutcome(detail::JobRunBase &base) override
    {
        Run &run = static_cast<Run &>(base);
        Result<T> result = std::move(*run.outcome);
        // Through copies, as in deliverEvents: the handler may destroy the job.
        if (result) {
            if (const auto onFinished = m_onFinished)
                onFinished(std::move(result).value());
        } else if (result.isCancellation()) {
            if (const auto onCancelled = m_onCancelled)
                onCancelled();
        } else if (const auto onFailed = m_onFailed) {
            onFailed(result.error());
        }
    }

    const ProgressMode m_mode;
    std::function<void(const P &)> m_onProgress;
    std::function<void(T)> m_onFinished;
    std::function<void(const Error &)> m_onFailed;
    std::function<void()> m_onCancelled;
};

} // namespace ifs
