#include "common/backgroundjob.h"

#include <QCoreApplication>
#include <QHash>
#include <QThreadPool>

#include <algorithm>
#include <chrono>
#include <exception>
#include <new>

namespace ifs {

namespace detail {

JobRunBase::~JobRunBase() = default;

void JobRunBase::wakeForProgressLocked()
{
    if (progressWake)
        return;
    progressWake = true;
    postWakeLocked();
}

void JobRunBase::wakeForEventLocked()
{
    if (eventWake)
        return;
    eventWake = true;
    postWakeLocked();
}

void JobRunBase::postWakeLocked()
{
    // The job clears `receiver` under this mutex before it lets go of the run, so it is alive
    // here; a wake-up still queued when it goes is discarded with it.
    BackgroundJobBase *job = receiver;
    if (!job)
        return;
    const quint64 runSerial = serial;
    QMetaObject::invokeMethod(
        job, [job, runSerial] { job->wake(runSerial); }, Qt::QueuedConnection);
}

Error currentExceptionError()
{
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return Error{QObject::tr("Not enough memory"), ErrorCode::OutOfMemory};
    } catch (const std::exception &e) {
        return Error{QString::fromLocal8Bit(e.what())};
    } catch (...) {
        return Error{QObject::tr("An unknown error occurred")};
    }
}

} // namespace detail

BackgroundJobBase::BackgroundJobBase(QObject *parent)
    : QObject(parent)
{
    m_throttle.setSingleShot(true);
    connect(&m_throttle, &QTimer::timeout, this, &BackgroundJobBase::process);
}

BackgroundJobBase::~BackgroundJobBase()
{
    drop();
}

void BackgroundJobBase::requestCancel()
{
    if (m_run)
        m_run->cancel = true;
}

bool BackgroundJobBase::isCancelRequested() const
{
    return m_run && m_run->cancel.load();
}

void BackgroundJobBase::discard()
{
    drop();
}

bool BackgroundJobBase::waitForWorker(QDeadlineTimer deadline) const
{
    const std::shared_ptr<detail::JobRunBase> run = m_run;
    if (!run)
        return true;
    QMutexLocker lock(&run->mutex);
    while (!run->ended) {
        if (!run->endedCondition.wait(&run->mutex, deadline))
            return run->ended;
    }
    return true;
}

QThreadPool *BackgroundJobBase::threadPool() const
{
    return m_pool ? m_pool : QThreadPool::globalInstance();
}

namespace {

/// The dedicated pools by name. Jobs live in the GUI thread, and so does this table.
QHash<QString, QPointer<QThreadPool>> &dedicatedPools()
{
    static QHash<QString, QPointer<QThreadPool>> pools;
    return pools;
}

} // namespace

void BackgroundJobBase::waitForAllRuns()
{
    for (const QPointer<QThreadPool> &pool : std::as_const(dedicatedPools())) {
        if (pool)
            pool->waitForDone();
    }
    QThreadPool::globalInstance()->waitForDone();
}

QThreadPool *BackgroundJobBase::dedicatedPool(const QString &name, int maxThreads)
{
    QPointer<QThreadPool> &pool = dedicatedPools()[name];
    if (!pool) {
        pool = new QThreadPool(QCoreApplication::instance());
        pool->setObjectName(name);
        pool->setMaxThreadCount(maxThreads);
    }
    return pool;
}

void BackgroundJobBase::launch(std::shared_ptr<detail::JobRunBase> run, std::function<void()> body)
{
    drop();
    {
        QMutexLocker lock(&run->mutex);
        run->receiver = this;
    }
    m_run = std::move(run);
    threadPool()->start(std::move(body));
}

void BackgroundJobBase::drop()
{
    if (!m_run)
        return;
    {
        QMutexLocker lock(&m_run->mutex);
        m_run->receiver = nullptr;
    }
    m_run->cancel = true;
    m_run.reset();
    m_throttle.stop();
    m_lastProgress.reset();
}

qint64 BackgroundJobBase::now() const
{
    if (m_clock)
        return m_clock();
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void BackgroundJobBase::wake(quint64 serial)
{
    if (m_run && m_run->serial == serial)
        process();
}

void BackgroundJobBase::process()
{
    if (m_delivering) {
        // A handler spun an event loop (a modal dialog): delivering here would overtake the
        // events the outer pass still holds. The outer pass goes round once more instead.
        m_deliverAgain = true;
        return;
    }
    const QPointer<BackgroundJobBase> self(this);
    do {
        m_deliverAgain = false;
        m_delivering = true;
        processOnce();
        if (!self)
            return; // a handler destroyed the job
        m_delivering = false;
    } while (m_deliverAgain);
}

void BackgroundJobBase::processOnce()
{
    const std::shared_ptr<detail::JobRunBase> run = m_run;
    if (!run)
        return;
    const qint64 time = now();
    const bool due = !m_lastProgress || time - *m_lastProgress >= m_interval;
    bool ended = false;
    bool deliverProgress = false;
    bool heldBack = false;
    {
        QMutexLocker lock(&run->mutex);
        run->eventWake = false;
        ended = run->ended;
        deliverProgress = run->progressDirty && (due || ended);
        heldBack = run->progressDirty && !deliverProgress;
        // While progress is held back the throttle timer is its wake-up: the worker posts none.
        run->progressWake = heldBack;
    }
    const QPointer<BackgroundJobBase> self(this);
    deliverEvents(*run, deliverProgress);
    if (!self || m_run != run)
        return; // a handler destroyed the job, or started or dropped a run
    if (deliverProgress)
        m_lastProgress = time;
    if (ended) {
        // The worker has returned and everything it reported is delivered: the terminal call.
        m_run.reset();
        m_throttle.stop();
        m_lastProgress.reset();
        deliverOutcome(*run);
        return;
    }
    if (heldBack) {
        const qint64 remaining = m_interval - (time - *m_lastProgress);
        m_throttle.start(int(std::clamp<qint64>(remaining, 1, m_interval)));
    }
}

} // namespace ifs
