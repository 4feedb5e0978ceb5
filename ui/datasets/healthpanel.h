#pragma once

#include "base/result.h"
#include "common/backgroundjob.h"
#include "dataset/healthcheck.h"
#include "dataset/imagefolder.h"
#include "dataset/quarantine.h"

#include <QElapsedTimer>
#include <QList>
#include <QPair>
#include <QString>
#include <QStringList>
#include <QWidget>

#include <atomic>
#include <functional>

class QAction;
class QComboBox;
class QLabel;
class QLayout;
class QProgressBar;
class QPushButton;
class QStackedWidget;
class QTableView;

namespace ifs {

class DuplicatePairView;
class HealthFilterModel;
class HealthReportModel;

/// Checks a dataset the way torchvision's loader would read it and lets the user move what would
/// break training into a quarantine folder beside the dataset (and back).
///
/// The check runs on a worker thread on a copy of the split list (the indexes are kept alive for
/// the run). Each run ends with exactly one of finished(), cancelled() or failed(); isRunning() is
/// already false when it is emitted. Destroying the panel mid-run cancels the check without
/// waiting for it (it ends in the background) and emits nothing.
class HealthPanel : public QWidget
{
    Q_OBJECT

public:
    explicit HealthPanel(QWidget *parent = nullptr);
    ~HealthPanel() override;

    /// The dataset to check: one (name, index) per split, or a single ("", index) for a plain
    /// ImageFolder root. A different root cancels a running check, forgets the report and the undo
    /// history; the same root (e.g. after a rescan) keeps both and is used by the next start().
    void setDataset(const QString &datasetRoot, QList<QPair<QString, IndexPtr>> splits);
    QString datasetRoot() const { return m_root; }

    /// What a run calls on its worker thread: checkHealth() unless set (tests set one that waits
    /// for them, to find a run still going).
    using CheckFunction = std::function<HealthReport(
        const QList<HealthTarget> &targets, const HealthOptions &options,
        const std::function<void(int64_t done, int64_t total)> &progress,
        const std::atomic_bool *cancel)>;
    void setCheckFunction(CheckFunction check) { m_check = std::move(check); }

    void setOptions(const HealthOptions &options);
    HealthOptions options() const { return m_options; }

    /// Where "Move to Quarantine" puts files; empty (the default) means
    /// defaultQuarantineFolder(datasetRoot()).
    void setQuarantineFolder(const QString &folder) { m_quarantineFolder = folder; }
    QString quarantineFolder() const;

    bool isRunning() const { return m_job.isRunning(); }
    bool hasReport() const { return m_hasReport; }
    /// Summary of the last report as shown above the table.
    QString summaryText() const;

    HealthReportModel *model() const { return m_model; }
    HealthFilterModel *filterModel() const { return m_filter; }
    QTableView *view() const { return m_view; }

    QAction *checkErrorsAction() const { return m_checkErrorsAction; }
    QAction *quarantineAction() const { return m_quarantineAction; }
    QAction *undoAction() const { return m_undoAction; }
    QAction *copyAction() const { return m_copyAction; }
    QAction *exportAction() const { return m_exportAction; }
    /// Checkable: whether checks also look for near-duplicates (HealthOptions).
    QAction *nearDuplicatesAction() const { return m_nearDuplicatesAction; }
    /// The current row's two files when it is a duplicate or near-duplicate (hidden otherwise).
    DuplicatePairView *pairView() const { return m_pairView; }

    /// Moves done in this session, oldest first; undoLastQuarantine() takes the last.
    QList<QuarantineBatch> quarantineHistory() const { return m_batches; }

    /// The rows shown (filter and sort applied) as tab-separated text with a header line.
    QString reportText() const;
    /// Writes the whole report as JSON, atomically.
    Status exportReport(const QString &fileName) const;

public Q_SLOTS:
    void start();
    void cancel();
    /// Ticks the files with errors and unticks the rest; returns how many were ticked.
    int checkErrorsOnly();
    /// Moves the ticked files into the quarantine folder. With `confirm`, asks first and reports a
    /// failure in a message box; without (tests, scripts), neither: failures go to statusMessage().
    /// Returns true when files were moved.
    bool quarantineChecked(bool confirm = true);
    /// Moves the files of the last move back. Same `confirm` rule for reporting failures.
    bool undoLastQuarantine(bool confirm = true);
    /// Copies reportText() to the clipboard.
    void copyReport();
    /// Asks for a file name and exports the report as JSON.
    void exportReportInteractively();

Q_SIGNALS:
    void runningChanged(bool running);
    /// Throttled to ~10 Hz while running.
    void progressChanged(qint64 done, qint64 total);
    /// Terminal signals: exactly one per run.
    void finished(int errors, int warnings);
    void cancelled();
    void failed(const QString &message);
    /// A row was double-clicked (or "Open Image" chosen): show this image.
    void fileActivated(const QString &absolutePath);
    void statusMessage(const QString &message);
    /// Files left the dataset (the dataset's index is stale now) or came back.
    void filesQuarantined(const QStringList &originalPaths);
    void quarantineUndone(const QStringList &originalPaths);

private:
    struct Progress
    {
        qint64 done = 0;
        qint64 total = 0;
    };

    void buildUi();
    QLayout *buildHeader();
    QLayout *buildSummaryRow();
    QWidget *buildPages();
    QWidget *buildTable();
    QWidget *buildSuccessPage();
    void createActions();
    QLayout *buildActionBar();
    void endRun(const HealthReport &report, const QString &error);
    void updateProgress(qint64 done, qint64 total);
    void updateState();
    void updateSummary();
    void updateFilterCombo();
    void applyFilter();
    void showContextMenu(const QPoint &pos);
    void activateRow(const QModelIndex &proxyIndex);
    void showPairOf(const QModelIndex &proxyIndex);
    int64_t sampleTotal() const;

    QString m_root;
    QList<QPair<QString, IndexPtr>> m_splits;
    HealthOptions m_options;
    QString m_quarantineFolder;
    QList<QuarantineBatch> m_batches;
    bool m_hasReport = false;
    QString m_lastError; // why the last run failed, shown in place of the table

    CheckFunction m_check;
    BackgroundJob<HealthReport, Progress> m_job;
    // The current or last run's.
    QString m_runRoot;
    QElapsedTimer m_runClock;
    qint64 m_runDone = 0;
    qint64 m_runTotal = 0;
    qint64 m_lastDone = -1;

    HealthReportModel *m_model = nullptr;
    HealthFilterModel *m_filter = nullptr;

    QPushButton *m_startButton = nullptr;
    QStackedWidget *m_statusStack = nullptr;
    QLabel *m_datasetLabel = nullptr;
    QProgressBar *m_progressBar = nullptr;
    QLabel *m_summaryLabel = nullptr;
    QLabel *m_filterLabel = nullptr;
    QComboBox *m_filterCombo = nullptr;
    QStackedWidget *m_pages = nullptr;
    QLabel *m_emptyLabel = nullptr;
    QLabel *m_successIcon = nullptr;
    QLabel *m_successLabel = nullptr;
    QTableView *m_view = nullptr;
    QAction *m_checkErrorsAction = nullptr;
    QAction *m_quarantineAction = nullptr;
    QAction *m_undoAction = nullptr;
    QAction *m_copyAction = nullptr;
    QAction *m_exportAction = nullptr;
    QAction *m_nearDuplicatesAction = nullptr;
    DuplicatePairView *m_pairView = nullptr;
};

} // namespace ifs
