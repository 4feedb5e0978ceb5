#include "transforms/datasetstatsjob.h"

namespace ifs {

DatasetStatsJob::DatasetStatsJob(QObject *parent)
    : QObject(parent)
{
    m_job.onProgress([this](const Progress &progress) {
        if (progress.total > 0)
            Q_EMIT progressChanged(progress.done, progress.total);
    });
    m_job.onFinished([this](const DatasetChannelStats &stats) { Q_EMIT finished(stats); });
    m_job.onFailed([this](const Error &error) {
        Q_EMIT failed(error.message.isEmpty() ? tr("The statistics could not be computed")
                                              : error.message);
    });
    m_job.onCancelled([this] { Q_EMIT cancelled(); });
}

DatasetStatsJob::~DatasetStatsJob() = default;

void DatasetStatsJob::start(const QStringList &paths, int maxImages, quint64 seed, int threads)
{
    m_job.start([paths, maxImages, seed,
                 threads](JobContext<Progress> &context) -> Result<DatasetChannelStats> {
        Result<DatasetChannelStats> stats = computeDatasetStats(
            paths, maxImages, seed, threads, context.cancelFlag(), [&context](int done, int total) {
                context.setProgress(Progress{done, total});
            });
        if (context.isCancelled() || (stats && stats->cancelled))
            return context.cancelled();
        return stats;
    });
}

void DatasetStatsJob::requestCancel()
{
    m_job.requestCancel();
}

bool DatasetStatsJob::isRunning() const
{
    return m_job.isRunning();
}

} // namespace ifs
