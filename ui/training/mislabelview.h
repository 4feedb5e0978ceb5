#pragma once

#include "common/backgroundjob.h"
#include "dataset/quarantine.h"
#include "training/evaluation.h"
#include "training/mislabel.h"

#include <QList>
#include <QStringList>
#include <QWidget>

class QComboBox;
class QLabel;
class QPushButton;
class QTableWidget;

namespace ifs {

class ThumbnailLoader;

/// "Likely mislabelled": every train and val image ranked by the model's confidence in its given
/// label (training/mislabel.h), with the given and the predicted class, and the fixes: Relabel
/// (move the selected images to the predicted or a chosen class), Quarantine, and Undo of the
/// last fix. Scoring and each fix run as a BackgroundJob; after a fix the dataset is scored again
/// from disk, so the table always shows the folders as they are.
class MislabelView : public QWidget
{
    Q_OBJECT

public:
    explicit MislabelView(QWidget *parent = nullptr);
    ~MislabelView() override;

    void setDataset(const QString &root) { m_root = root; }
    void setCheckpoint(const QString &checkpoint) { m_checkpoint = checkpoint; }
    void setClassifierOptions(const ClassifierOptions &options) { m_options = options; }

    /// Scores the dataset with the checkpoint (again).
    void scan();
    /// Moves the selected images into `targetClass` ("" : each to its predicted class).
    void relabelSelected(const QString &targetClass = {});
    void quarantineSelected();
    /// Undoes the last relabel or quarantine.
    void undoLast();
    bool isBusy() const { return m_scanJob.isRunning() || m_fixJob.isRunning(); }

    QTableWidget *table() const { return m_table; }
    const QList<MislabelCandidate> &candidates() const { return m_candidates; }
    QStringList classes() const { return m_classes; }

Q_SIGNALS:
    void scanned();
    /// A relabel, quarantine or undo is done (the new scan follows).
    void fixed(const QString &message);
    void failed(const QString &message);
    /// Files moved: whatever shows the dataset should rescan it.
    void datasetChanged();

private:
    void showScan(const MislabelScan &scan);
    QStringList selectedPaths() const;
    void runFix(std::function<Result<QuarantineBatch>()> fix, const QString &what);

    QString m_root;
    QString m_checkpoint;
    ClassifierOptions m_options;
    QStringList m_classes;
    QList<MislabelCandidate> m_candidates;
    QList<QuarantineBatch> m_undo; // newest last
    QString m_lastFix; // said after the scan that follows a fix
    BackgroundJob<MislabelScan> m_scanJob;
    BackgroundJob<QuarantineBatch> m_fixJob;
    ThumbnailLoader *m_loader;
    QTableWidget *m_table;
    QComboBox *m_target;
    QPushButton *m_scan;
    QPushButton *m_relabel;
    QPushButton *m_quarantine;
    QPushButton *m_undoButton;
    QLabel *m_status;
};

} // namespace ifs
