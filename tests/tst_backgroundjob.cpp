// The background job skeleton every long GUI job uses: exactly one terminal call per run,
// cancel honoured, a superseded run's result dropped, an owner destroyed mid-run safe, progress
// throttled and ordered. Workers are held with semaphores the test releases and the throttle
// reads a clock the test moves: nothing here depends on how fast the machine is.
#include "common/backgroundjob.h"

#include <QCoreApplication>
#include <QSemaphore>
#include <QTest>
#include <QThread>
#include <QThreadPool>

#include <atomic>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>

using namespace ifs;
using namespace Qt::StringLiterals;

namespace {

/// How long a QTRY_ waits for what the event loop delivers: a bound for a hung job only, generous
/// for a loaded machine.
constexpr int kWaitMs = 60000;

/// A worker waits at the gate until the test opens it; the test knows when it has arrived.
struct Gate
{
    QSemaphore arrived;
    QSemaphore open;

    /// Worker side.
    void pass()
    {
        arrived.release();
        open.acquire();
    }
    /// Test side: waits (bounded) until a worker is at the gate.
    bool waitArrived() { return arrived.tryAcquire(1, 10000); }
};

/// What a job delivered, in order: "p<value>", "e<name>", "finished <value>", "failed <message>",
/// "cancelled".
struct Log
{
    QStringList entries;

    int terminals() const
    {
        int n = 0;
        for (const QString &entry : entries)
            n += entry.startsWith(u"finished") || entry.startsWith(u"failed")
                || entry == u"cancelled";
        return n;
    }
};

template<typename T, typename P>
void record(BackgroundJob<T, P> &job, Log &log)
{
    job.onFinished(
        [&log](T value) { log.entries.append(QStringLiteral("finished %1").arg(value)); });
    job.onFailed([&log](const Error &error) { log.entries.append(u"failed "_s + error.message); });
    job.onCancelled([&log] { log.entries.append(QStringLiteral("cancelled")); });
    if constexpr (std::is_same_v<P, int>)
        job.onProgress([&log](int value) { log.entries.append(QStringLiteral("p%1").arg(value)); });
}

/// Runs the events already posted (the worker's wake-ups among them).
void drainEvents()
{
    QCoreApplication::sendPostedEvents();
    QCoreApplication::processEvents();
}

} // namespace

class TestBackgroundJob : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void init();
    void cleanup();

    void finishesOnce();
    void failsOnce_data();
    void failsOnce();
    void cancelIsHonoured();
    void cancelBeforeStartSkipsTheWork();
    void supersedeDropsTheOldRun();
    void discardDeliversNothing();
    void ownerDestroyedMidRun();
    void progressIsThrottled();
    void eventsComeInOrderAfterTheirProgress();
    void drainModeDeliversEveryItemOnce();
    void terminalHandlerMayStartTheNextRun();
    void waitForWorker();
    void handlerSpinningAnEventLoopKeepsTheOrder();
    void handlerMayDestroyTheJob();

private:
    /// Ends every run the test left, so that none outlives its test's locals.
    void finishPool();

    std::unique_ptr<QThreadPool> m_pool;
};

void TestBackgroundJob::init()
{
    m_pool = std::make_unique<QThreadPool>();
    m_pool->setMaxThreadCount(4);
}

void TestBackgroundJob::cleanup()
{
    finishPool();
    m_pool.reset();
}

void TestBackgroundJob::finishPool()
{
    QVERIFY(m_pool->waitForDone(30000));
    drainEvents();
}

void TestBackgroundJob::finishesOnce()
{
    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    bool runningInHandler = true;
    job.onFinished([&](int value) {
        runningInHandler = job.isRunning();
        log.entries.append(QStringLiteral("finished %1").arg(value));
    });
    job.start([](JobContext<NoProgress> &) -> Result<int> { return 42; });
    QVERIFY(job.isRunning());
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    QCOMPARE(log.entries, QStringList{u"finished 42"_s});
    QVERIFY(!runningInHandler); // a handler may start the next run
    QVERIFY(!job.isRunning());
    // The worker has returned; nothing can follow.
    finishPool();
    QCOMPARE(log.entries, QStringList{u"finished 42"_s});
}

void TestBackgroundJob::failsOnce_data()
{
    QTest::addColumn<int>("how");
    QTest::addColumn<QString>("message");
    QTest::addColumn<int>("code");
    QTest::newRow("error") << 0 << u"cannot read x.pt"_s << int(ErrorCode::Io);
    QTest::newRow("exception") << 1 << u"bad thing"_s << int(ErrorCode::Failed);
    QTest::newRow("bad_alloc") << 2 << u"Not enough memory"_s << int(ErrorCode::OutOfMemory);
    QTest::newRow("unknown") << 3 << u"An unknown error occurred"_s << int(ErrorCode::Failed);
}

void TestBackgroundJob::failsOnce()
{
    QFETCH(int, how);
    QFETCH(QString, message);
    QFETCH(int, code);
    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    std::optional<Error> error;
    job.onFailed([&](const Error &e) {
        error = e;
        log.entries.append(u"failed "_s + e.message);
    });
    job.start([how](JobContext<NoProgress> &) -> Result<int> {
        switch (how) {
        case 0:
            return Error{QStringLiteral("cannot read x.pt"), ErrorCode::Io};
        case 1:
            throw std::runtime_error("bad thing");
        case 2:
            throw std::bad_alloc();
        default:
            throw 7; // the worker is the exception boundary for anything
        }
    });
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    finishPool();
    QCOMPARE(log.entries, QStringList{u"failed "_s + message});
    QVERIFY(error);
    QCOMPARE(int(error->code), code);
}

void TestBackgroundJob::cancelIsHonoured()
{
    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    auto started = std::make_shared<QSemaphore>();
    job.start([started](JobContext<NoProgress> &context) -> Result<int> {
        started->release();
        while (!context.isCancelled())
            QThread::yieldCurrentThread();
        return context.cancelled();
    });
    QVERIFY(started->tryAcquire(1, 10000)); // the work is running: cancel reaches it mid-run
    QVERIFY(!job.isCancelRequested());
    job.requestCancel();
    QVERIFY(job.isCancelRequested());
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    finishPool();
    QCOMPARE(log.entries, QStringList{u"cancelled"_s});
    QVERIFY(!job.isRunning());
}

void TestBackgroundJob::cancelBeforeStartSkipsTheWork()
{
    // One thread, held by a blocker: the run waits in the queue while it is cancelled.
    m_pool->setMaxThreadCount(1);
    Gate blocker;
    m_pool->start([&blocker] { blocker.pass(); });
    QVERIFY(blocker.waitArrived());

    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    auto ran = std::make_shared<std::atomic_bool>(false);
    job.start([ran](JobContext<NoProgress> &) -> Result<int> {
        *ran = true;
        return 1;
    });
    job.requestCancel();
    blocker.open.release();
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    finishPool();
    QCOMPARE(log.entries, QStringList{u"cancelled"_s});
    QVERIFY(!*ran);
}

void TestBackgroundJob::supersedeDropsTheOldRun()
{
    BackgroundJob<int, int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    auto gate = std::make_shared<Gate>();
    auto sawCancel = std::make_shared<std::atomic_bool>(false);
    job.start([gate, sawCancel](JobContext<int> &context) -> Result<int> {
        gate->pass();
        *sawCancel = context.isCancelled();
        // Everything it reports now is dropped, its result too.
        context.setProgress(-1);
        context.post([] { QFAIL("a superseded run's posted call ran"); });
        return 1;
    });
    QVERIFY(gate->waitArrived());
    job.start([](JobContext<int> &) -> Result<int> { return 2; });
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    QCOMPARE(log.entries, QStringList{u"finished 2"_s});
    // Now the first run ends, after the second: nothing of it arrives.
    gate->open.release();
    finishPool();
    QCOMPARE(log.entries, QStringList{u"finished 2"_s});
    QVERIFY(*sawCancel);
}

void TestBackgroundJob::discardDeliversNothing()
{
    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    auto gate = std::make_shared<Gate>();
    job.start([gate](JobContext<NoProgress> &) -> Result<int> {
        gate->pass();
        return 1;
    });
    QVERIFY(gate->waitArrived());
    job.discard();
    QVERIFY(!job.isRunning());
    gate->open.release();
    finishPool();
    QVERIFY(log.entries.isEmpty());
}

void TestBackgroundJob::ownerDestroyedMidRun()
{
    auto *owner = new QObject;
    auto *job = new BackgroundJob<int, int>(owner);
    job->setThreadPool(m_pool.get());
    int calls = 0;
    job->onProgress([&calls, owner](int) { calls += owner->objectName().size() + 1; });
    job->onFinished([&calls, owner](int) { calls += owner->objectName().size() + 1; });
    job->onFailed([&calls](const Error &) { ++calls; });
    job->onCancelled([&calls] { ++calls; });
    auto gate = std::make_shared<Gate>();
    auto sawCancel = std::make_shared<std::atomic_bool>(false);
    job->start([gate, sawCancel](JobContext<int> &context) -> Result<int> {
        gate->pass();
        *sawCancel = context.isCancelled();
        context.setProgress(1);
        context.post([] { QFAIL("a call posted to a destroyed job ran"); });
        return 1;
    });
    QVERIFY(gate->waitArrived());
    // The worker is held at the gate: a destructor that waited for it would never return.
    delete owner;
    gate->open.release();
    finishPool();
    QCOMPARE(calls, 0);
    QVERIFY(*sawCancel);
}

void TestBackgroundJob::progressIsThrottled()
{
    BackgroundJob<int, int> job;
    job.setThreadPool(m_pool.get());
    qint64 now = 1000;
    job.setClock([&now] { return now; });
    QCOMPARE(job.progressInterval(), 100);
    Log log;
    record(job, log);
    auto first = std::make_shared<Gate>();
    auto second = std::make_shared<Gate>();
    job.start([first, second](JobContext<int> &context) -> Result<int> {
        context.setProgress(1);
        first->pass();
        for (int i = 2; i <= 1000; ++i)
            context.setProgress(i);
        second->pass();
        context.setProgress(1001);
        return 7;
    });
    // The first value goes out at once.
    QVERIFY(first->waitArrived());
    QTRY_COMPARE_WITH_TIMEOUT(log.entries, QStringList{u"p1"_s}, kWaitMs);
    // 999 more within the same millisecond: held back, and only the newest goes out once the
    // interval has passed.
    first->open.release();
    QVERIFY(second->waitArrived());
    now += 99;
    drainEvents();
    QCOMPARE(log.entries, QStringList{u"p1"_s});
    now += 1;
    QTRY_COMPARE_WITH_TIMEOUT(log.entries, (QStringList{u"p1"_s, u"p1000"_s}), kWaitMs);
    // The end delivers what is left before the terminal call, interval or not.
    second->open.release();
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    finishPool();
    QCOMPARE(log.entries, (QStringList{u"p1"_s, u"p1000"_s, u"p1001"_s, u"finished 7"_s}));
}

void TestBackgroundJob::eventsComeInOrderAfterTheirProgress()
{
    BackgroundJob<int, int> job;
    job.setThreadPool(m_pool.get());
    qint64 now = 0; // never moves: only the events and the end can carry progress out
    job.setClock([&now] { return now; });
    Log log;
    record(job, log);
    job.start([&log](JobContext<int> &context) -> Result<int> {
        for (int i = 1; i <= 3; ++i) {
            context.setProgress(10 * i);
            context.setProgress(10 * i + 1);
            context.post([&log, i] { log.entries.append(QStringLiteral("e%1").arg(i)); });
        }
        context.setProgress(99);
        return 0;
    });
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    finishPool();
    // Each event after the newest progress before it. The first progress the GUI sees goes out
    // on its own (nothing was delivered before it): which one that is depends on when the GUI
    // looked, so that one is not asserted; the frozen clock holds back every other.
    QStringList entries = log.entries;
    const qsizetype before = entries.size();
    for (const QString &alone : {u"p10"_s, u"p20"_s, u"p30"_s})
        entries.removeAll(alone);
    QVERIFY(before - entries.size() <= 1);
    QCOMPARE(entries,
             (QStringList{u"p11"_s, u"e1"_s, u"p21"_s, u"e2"_s, u"p31"_s, u"e3"_s, u"p99"_s,
                          u"finished 0"_s}));
}

void TestBackgroundJob::drainModeDeliversEveryItemOnce()
{
    BackgroundJob<int, QList<int>> job(nullptr, ProgressMode::Drain);
    job.setThreadPool(m_pool.get());
    qint64 now = 0;
    job.setClock([&now] { return now; });
    QList<int> delivered;
    int batches = 0;
    job.onProgress([&](const QList<int> &items) {
        delivered += items;
        ++batches;
    });
    bool finished = false;
    job.onFinished([&](int) { finished = true; });
    auto gate = std::make_shared<Gate>();
    job.start([gate](JobContext<QList<int>> &context) -> Result<int> {
        for (int i = 0; i < 500; ++i) {
            context.updateProgress([i](QList<int> &items) { items.append(i); });
            if (i == 0)
                gate->pass();
        }
        return 0;
    });
    QVERIFY(gate->waitArrived());
    QTRY_COMPARE_WITH_TIMEOUT(batches, 1, kWaitMs); // the first item, at once
    gate->open.release();
    QTRY_VERIFY_WITH_TIMEOUT(finished, kWaitMs);
    finishPool();
    QList<int> expected;
    for (int i = 0; i < 500; ++i)
        expected.append(i);
    QCOMPARE(delivered, expected);
    QCOMPARE(batches, 2); // the clock never moved: the rest in one batch, before the end
}

void TestBackgroundJob::terminalHandlerMayStartTheNextRun()
{
    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    QList<int> results;
    job.onFinished([&](int value) {
        results.append(value);
        if (value < 3)
            job.start([value](JobContext<NoProgress> &) -> Result<int> { return value + 1; });
    });
    job.start([](JobContext<NoProgress> &) -> Result<int> { return 1; });
    QTRY_COMPARE_WITH_TIMEOUT(results.size(), 3, kWaitMs);
    finishPool();
    QCOMPARE(results, (QList<int>{1, 2, 3}));
    QVERIFY(!job.isRunning());
}

void TestBackgroundJob::waitForWorker()
{
    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    QVERIFY(job.waitForWorker(QDeadlineTimer(0))); // no run: nothing to wait for
    auto gate = std::make_shared<Gate>();
    job.start([gate](JobContext<NoProgress> &) -> Result<int> {
        gate->pass();
        return 5;
    });
    QVERIFY(gate->waitArrived());
    QVERIFY(!job.waitForWorker(QDeadlineTimer(0)));
    gate->open.release();
    QVERIFY(job.waitForWorker());
    // The worker has returned; the terminal call still comes from the event loop.
    QVERIFY(job.isRunning());
    QVERIFY(log.entries.isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(log.entries, QStringList{u"finished 5"_s}, kWaitMs);
}

void TestBackgroundJob::handlerSpinningAnEventLoopKeepsTheOrder()
{
    // Two events arrive in one delivery; the first one's handler spins an event loop (as a modal
    // dialog does) after the run has ended. The nested wake-up must not deliver the terminal call
    // ahead of the second event.
    BackgroundJob<int> job;
    job.setThreadPool(m_pool.get());
    Log log;
    record(job, log);
    auto gate = std::make_shared<Gate>();
    bool waited = false;
    const auto first = [&job, &log, &waited, gate] {
        log.entries.append(u"e1"_s);
        gate->open.release(); // the worker returns: the run's end is queued for the job
        waited = job.waitForWorker(QDeadlineTimer(kWaitMs));
        drainEvents(); // the nested loop
    };
    job.start([gate, first, &log](JobContext<NoProgress> &context) -> Result<int> {
        context.post(first);
        context.post([&log] { log.entries.append(u"e2"_s); });
        gate->pass(); // both are queued before the job looks
        return 7;
    });
    QVERIFY(gate->waitArrived());
    QTRY_COMPARE_WITH_TIMEOUT(log.terminals(), 1, kWaitMs);
    QVERIFY(waited);
    QCOMPARE(log.entries, (QStringList{u"e1"_s, u"e2"_s, u"finished 7"_s}));
}

void TestBackgroundJob::handlerMayDestroyTheJob()
{
    // The terminal handler deletes its own job and then uses what it captured: the handler that
    // runs is a copy, so its captures outlive the job.
    auto job = std::make_unique<BackgroundJob<int>>();
    job->setThreadPool(m_pool.get());
    QStringList seen;
    const QString note = u"captured after the job is gone"_s;
    job->onFinished([&job, &seen, note](int value) {
        job.reset();
        seen.append(QStringLiteral("%1: %2").arg(value).arg(note));
    });
    job->start([](JobContext<NoProgress> &) -> Result<int> { return 3; });
    QTRY_COMPARE_WITH_TIMEOUT(seen.size(), 1, kWaitMs);
    QCOMPARE(seen.constFirst(), u"3: captured after the job is gone"_s);
    QVERIFY(!job);
}

QTEST_GUILESS_MAIN(TestBackgroundJob)
#include "tst_backgroundjob.moc"
