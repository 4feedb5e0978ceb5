#pragma once

#include "common/backgroundjob.h"
#include "transforms/transformadvice.h"

#include <QObject>
#include <QStringList>

namespace ifs {

/// Computes the dataset's per-channel mean and std (computeDatasetStats) on worker threads, with
/// progress at ~10 Hz and exactly one terminal signal per start(). A new start() supersedes a
/// running one, which then reports nothing.
class DatasetStatsJob : public QObject
{
    Q_OBJECT

public:
    explicit DatasetStatsJob(QObject *parent = nullptr);
    ~DatasetStatsJob() override;

    void start(const QStringList &paths, int maxImages, quint64 seed, int threads = 0);
    void requestCancel();
    bool isRunning() const;

Q_SIGNALS:
    void progressChanged(int done, int total);
    void finished(const ifs::DatasetChannelStats &stats);
    void failed(const QString &message);
    void cancelled();

private:
    struct Progress
    {
        int done = 0;
        int total = 0;
    };

    BackgroundJob<DatasetChannelStats, Progress> m_job;
};

} // namespace ifs
