#pragma once

#include "dataset/datasetlayout.h"
#include "dataset/imagefolder.h"

#include <QFutureWatcher>
#include <QObject>
#include <QTimer>

#include <atomic>
#include <memory>
#include <mutex>

namespace ifs {

/// Scans a dataset folder (and its splits) on a worker thread. Classes are announced as soon as
/// they are known and counts grow at ~10 Hz; exactly one terminal signal per start().
class DatasetScanJob : public QObject
{
    Q_OBJECT

public:
    explicit DatasetScanJob(QObject *parent = nullptr);
    ~DatasetScanJob() override;

    void start(const QString &root, const ScanOptions &options = {});
    void requestCancel();
    bool isRunning() const;

Q_SIGNALS:
    void layoutDetected(const ifs::DatasetLayout &layout);
    void classesFound(const QString &split, const QStringList &classes);
    void countsChanged(const QString &split, const std::vector<int64_t> &counts);
    void finished(const ifs::DatasetScan &scan);
    void failed(const QString &message);
    void cancelled();

private:
    struct Shared;
    void poll();

    std::shared_ptr<Shared> m_shared;
    QFutureWatcher<void> m_watcher;
    QTimer m_poll;
};

} // namespace ifs
