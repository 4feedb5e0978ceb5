#include "datasets/datasetjobs.h"

namespace ifs {

DatasetScanJob::DatasetScanJob(QObject *parent)
    : QObject(parent)
{
    m_job.onProgress([this](const Counts &counts) {
        if (counts.known)
            Q_EMIT countsChanged(counts.split, counts.counts);
    });
    m_job.onFinished([this](const DatasetScan &scan) { Q_EMIT finished(scan); });
    m_job.onFailed([this](const Error &error) { Q_EMIT failed(error.message); });
    m_job.onCancelled([this] { Q_EMIT cancelled(); });
}

DatasetScanJob::~DatasetScanJob() = default;

bool DatasetScanJob::isRunning() const
{
    return m_job.isRunning();
}

void DatasetScanJob::requestCancel()
{
    m_job.requestCancel();
}

void DatasetScanJob::start(const QString &root, const ScanOptions &options)
{
    const DatasetLayout layout = detectLayout(root);
    m_job.discard(); // the old scan's classes must not follow the new layout
    Q_EMIT layoutDetected(layout);
    m_job.start([this, layout, options](JobContext<Counts> &context) -> Result<DatasetScan> {
        QString split; // the split being scanned; classesFound below reads it
        ScanCallbacks callbacks;
        callbacks.classesFound = [&](const QStringList &classes) {
            // Posted first, so that the counts of the split before come ahead of it.
            context.post([this, split, classes] { Q_EMIT classesFound(split, classes); });
            context.setProgress(
                Counts{true, split, std::vector<int64_t>(size_t(classes.size()), 0)});
        };
        callbacks.classProgress = [&](int classIndex, int64_t count) {
            context.updateProgress([&](Counts &counts) {
                if (size_t(classIndex) < counts.counts.size())
                    counts.counts[size_t(classIndex)] = count;
            });
        };
        Result<DatasetScan> scanned = scanDataset(
            layout, options, callbacks, [&](const QString &next) { split = next; },
            context.cancelFlag());
        if (context.isCancelled())
            return context.cancelled(); // what was scanned so far stays shown
        return scanned;
    });
}

} // namespace ifs
