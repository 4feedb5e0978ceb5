#include "datasets/datasetjobs.h"

#include <QtConcurrent>

namespace ifs {

/// State shared between the worker and the GUI thread. The worker writes counts into atomics;
/// the GUI thread polls them, so progress costs the scanner nothing.
struct DatasetScanJob::Shared
{
    std::atomic_bool cancel{false};
    std::mutex mutex;
    QString currentSplit;
    std::unique_ptr<std::atomic<int64_t>[]> counts;
    size_t classCount = 0;
    bool countsDirty = false;
    // Outcome, read once the future finished.
    DatasetScan scan;
    QString error;
};

DatasetScanJob::DatasetScanJob(QObject *parent)
    : QObject(parent)
{
    m_poll.setInterval(100);
    connect(&m_poll, &QTimer::timeout, this, &DatasetScanJob::poll);
    connect(&m_watcher, &QFutureWatcher<void>::finished, this, [this] {
        m_poll.stop();
        poll();
        const std::shared_ptr<Shared> shared = m_shared;
        if (!shared)
            return;
        if (shared->cancel.load())
            Q_EMIT cancelled();
        else if (!shared->error.isEmpty())
            Q_EMIT failed(shared->error);
        else
            Q_EMIT finished(shared->scan);
    });
}

DatasetScanJob::~DatasetScanJob()
{
    requestCancel();
    m_watcher.waitForFinished();
}

bool DatasetScanJob::isRunning() const
{
    return m_watcher.isRunning();
}

void DatasetScanJob::requestCancel()
{
    if (m_shared)
        m_shared->cancel = true;
}

void DatasetScanJob::poll()
{
    const std::shared_ptr<Shared> shared = m_shared;
    if (!shared)
        return;
    QString split;
    std::vector<int64_t> counts;
    {
        std::lock_guard lock(shared->mutex);
        if (!shared->counts)
            return;
        split = shared->currentSplit;
        counts.resize(shared->classCount);
        for (size_t i = 0; i < shared->classCount; ++i)
            counts[i] = shared->counts[i].load(std::memory_order_relaxed);
    }
    Q_EMIT countsChanged(split, counts);
}

void DatasetScanJob::start(const QString &root, const ScanOptions &options)
{
    if (isRunning()) {
        requestCancel();
        m_watcher.waitForFinished();
    }
    auto shared = std::make_shared<Shared>();
    m_shared = shared;
    const DatasetLayout layout = detectLayout(root);
    Q_EMIT layoutDetected(layout);

    QPointer<DatasetScanJob> self(this);
    auto work = [shared, layout, options, self] {
        QString split; // the split being scanned; classesFound below reads it
        ScanCallbacks callbacks;
        callbacks.classesFound = [&](const QStringList &classes) {
            {
                std::lock_guard lock(shared->mutex);
                shared->currentSplit = split;
                shared->classCount = size_t(classes.size());
                shared->counts.reset(new std::atomic<int64_t>[shared->classCount]);
                for (size_t i = 0; i < shared->classCount; ++i)
                    shared->counts[i] = 0;
            }
            if (self)
                QMetaObject::invokeMethod(
                    self.data(),
                    [self, split, classes] {
                        if (self)
                            Q_EMIT self->classesFound(split, classes);
                    },
                    Qt::QueuedConnection);
        };
        callbacks.classProgress = [&](int classIndex, int64_t count) {
            // The array only changes between splits, while no class walk runs.
            shared->counts[size_t(classIndex)].store(count, std::memory_order_relaxed);
        };
        Result<DatasetScan> scanned = scanDataset(
            layout, options, callbacks, [&](const QString &next) { split = next; },
            &shared->cancel);
        if (!scanned)
            shared->error = scanned.errorMessage();
        else
            shared->scan = std::move(scanned).value();
    };
    m_watcher.setFuture(QtConcurrent::run(work));
    m_poll.start();
}

} // namespace ifs
