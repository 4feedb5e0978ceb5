#pragma once

#include "checkpoint/checkpointrepair.h"
#include "checkpoints/checkpointjobs.h"

#include <QDialog>

class QComboBox;
class QFormLayout;
class QGroupBox;
class QLabel;
class QListWidget;
class QPushButton;
class QTimer;
class QTreeWidget;

namespace ifs {

class Settings;

/// "Load into model": fits a checkpoint's state dict to the keys a model expects. The target is a
/// TargetSpec: one of the app's models (modelTarget()), another checkpoint's state dict
/// (chooseTargetFile()), or whatever a caller passes to setTarget(). The repair is an editable list
/// of operations with a live match report (loadReport) and an Auto button (proposeRepair). The
/// result is the repaired state dict, tagged for the chosen device.
class LoadIntoModelDialog : public QDialog
{
    Q_OBJECT

public:
    LoadIntoModelDialog(const LoadedCheckpoint &source, Settings *settings,
                        QWidget *parent = nullptr);
    ~LoadIntoModelDialog() override;

    /// The keys to load into and how to name them ("resnet18 (torchvision)", "model.pt").
    void setTarget(const ckpt::TargetSpec &target, const QString &description);
    /// Reads a checkpoint file off the GUI thread and targets its main state dict; emits
    /// targetChanged() or targetFailed().
    void setTargetFile(const QString &path);
    ckpt::TargetSpec target() const { return m_target; }

    /// The state dict the operations act on (a path in the checkpoint).
    ckpt::KeyPath statePath() const { return m_path; }
    void setOperations(const QList<ckpt::Operation> &operations);
    QList<ckpt::Operation> operations() const { return m_operations; }
    /// Replaces the operations with proposeRepair()'s (what the Auto button does).
    void autoRepair();

    /// The report for the operations as they are now (after the debounce: call refreshReport()
    /// to have it at once).
    const ckpt::LoadReport &report() const { return m_report; }
    void refreshReport();
    /// "cpu", "cuda:0".
    QString targetDevice() const;
    /// The repaired state dict: the operations, then the mismatched-key policy, then the device.
    Result<ckpt::Value> repairedStateDict() const;

Q_SIGNALS:
    void reportUpdated();
    void targetChanged();
    void targetFailed(const QString &message);
    /// "Save Repaired As…" was chosen with this value.
    void saveRepairedRequested(const ckpt::Value &stateDict);

private:
    /// Which model's keys to fit (an app model or a checkpoint), the device, the state dict.
    QFormLayout *buildTargetForm();
    /// The list of repair operations with Auto, Add, Remove, Up and Down.
    QGroupBox *buildOperationsBox();
    /// The live match report: headline, summary, key tree.
    QGroupBox *buildReportBox();
    void connectSignals();
    void chooseTargetFile();
    void addOperation(int kind);
    void editOperation(int row);
    void moveOperation(int delta);
    void updateList();
    void scheduleReport();

    LoadedCheckpoint m_source;
    Settings *m_settings;
    ckpt::TargetSpec m_target;
    ckpt::KeyPath m_path;
    QList<ckpt::Operation> m_operations;
    ckpt::LoadReport m_report;
    CheckpointOpenJob *m_targetJob;
    QTimer *m_reportTimer;

    QLabel *m_targetLabel;
    QComboBox *m_device;
    QComboBox *m_stateDict;
    QListWidget *m_list;
    QPushButton *m_auto;
    QComboBox *m_mismatched;
    QLabel *m_headline;
    QLabel *m_summary;
    QTreeWidget *m_details;
    QPushButton *m_saveRepaired;
    QPushButton *m_ok;
};

} // namespace ifs
