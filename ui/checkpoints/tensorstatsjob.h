#pragma once

#include "checkpoint/checkpointsummary.h"
#include "common/backgroundjob.h"

#include <QObject>
#include <QString>

namespace ifs {

using ckpt::computeTensorStats;
using ckpt::TensorStats;

/// Computes tensor statistics off the GUI thread, latest request wins: a superseded request
/// reports nothing; the others end with finished().
class TensorStatsJob : public QObject
{
    Q_OBJECT

public:
    explicit TensorStatsJob(QObject *parent = nullptr);
    ~TensorStatsJob() override;
    void start(const QString &key, const ckpt::Tensor &tensor);
    /// Drops the request in flight (it reports nothing).
    void cancel();

Q_SIGNALS:
    void finished(const ifs::TensorStats &stats);

private:
    BackgroundJob<TensorStats> m_job;
    QString m_key; // the tensor of the current request
};

} // namespace ifs
