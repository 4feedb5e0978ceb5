#include "checkpoints/tensorstatsjob.h"

namespace ifs {

TensorStatsJob::TensorStatsJob(QObject *parent)
    : QObject(parent)
{
    m_job.onFinished([this](const TensorStats &stats) { Q_EMIT finished(stats); });
    // An exception (bad_alloc on a huge tensor) still answers the request: the view is waiting.
    m_job.onFailed([this](const Error &error) {
        TensorStats stats;
        stats.key = m_key;
        stats.error = error.message;
        Q_EMIT finished(stats);
    });
}

TensorStatsJob::~TensorStatsJob() = default;

void TensorStatsJob::cancel()
{
    m_job.discard();
}

void TensorStatsJob::start(const QString &key, const ckpt::Tensor &tensor)
{
    m_key = key;
    m_job.start([key, tensor](JobContext<NoProgress> &context) -> Result<TensorStats> {
        TensorStats stats = computeTensorStats(tensor, context.cancelFlag());
        if (stats.cancelled)
            return context.cancelled();
        stats.key = key;
        return stats;
    });
}

} // namespace ifs
