#pragma once

#include "common/backgroundjob.h"
#include "dataset/datasetlayout.h"
#include "dataset/imagefolder.h"

#include <QObject>

#include <vector>

namespace ifs {

/// Scans a dataset folder (and its splits) on a worker thread. Classes are announced as soon as
/// they are known and counts grow at ~10 Hz; exactly one terminal signal per start(). A new
/// start() supersedes a running scan, which then reports nothing.
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
    /// The images found so far per class of the split being scanned.
    struct Counts
    {
        bool known = false; ///< the split's classes are known (a plain root's split is "")
        QString split;
        std::vector<int64_t> counts;
    };

    BackgroundJob<DatasetScan, Counts> m_job;
};

} // namespace ifs
