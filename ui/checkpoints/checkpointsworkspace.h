#pragma once

#include "checkpoints/checkpointjobs.h"
#include "checkpoints/tensorstatsjob.h"

#include <QList>
#include <QWidget>

#include <optional>

class QComboBox;
class QHBoxLayout;
class QLabel;
class QLineEdit;
class QMenu;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QSplitter;
class QStackedWidget;
class QTabWidget;
class QTreeView;
class QTreeWidget;

namespace ifs {

class CheckpointTreeModel;
class ElidedLabel;
class EmptyStatePage;
class LoadIntoModelDialog;
class SaveCheckpointDialog;
class Settings;
class TensorStatsView;
class WarningBanner;

/// The Checkpoints workspace: open PyTorch checkpoints (dialog, recent list, drag and drop),
/// browse their nested structure with shapes, dtypes, saved devices and sizes, see totals and
/// per-tensor statistics, compare two files, fit one to a model's keys ("Load into model") and
/// save it in another form. Files are read and written off the GUI thread.
class CheckpointsWorkspace : public QWidget
{
    Q_OBJECT

public:
    explicit CheckpointsWorkspace(Settings *settings, QWidget *parent = nullptr);
    ~CheckpointsWorkspace() override;

    /// Reads `paths`; two or more are compared (the first with the second).
    void openFiles(const QStringList &paths);
    /// Shows a value made in the app (a repaired state dict) as a checkpoint named `label`.
    void openValue(const ckpt::Value &value, const QString &label);
    void showOpenDialog();
    void showCompareDialog();
    void cancelLoading();
    bool isLoading() const;
    bool hasCheckpoint() const { return m_current >= 0; }

    /// The checkpoint shown; nullptr when none.
    const LoadedCheckpoint *current() const;
    const QList<LoadedCheckpoint> &checkpoints() const { return m_checkpoints; }
    const std::optional<CheckpointComparison> &comparison() const { return m_comparison; }
    void setCurrentCheckpoint(int index);

    /// The str-key path of the dict selected in the tree (empty: none or the root).
    ckpt::KeyPath selectedDictPath() const;
    /// Selects the row at `path` in the tree.
    void selectPath(const ckpt::KeyPath &path);
    /// Selects the first tensor of the main state dict (its statistics follow).
    void selectFirstTensor();

    /// A "Load into model" dialog for the current checkpoint (deleted on close); nullptr when
    /// nothing is open. showLoadDialog() opens it.
    LoadIntoModelDialog *createLoadDialog();
    void showLoadDialog();
    /// Asks for the Export dialog on the current checkpoint's file (exportRequested()); nothing
    /// when no file is open or the value was made in the app.
    void requestExport();
    /// A "Save As" dialog for the current checkpoint and the dict selected (deleted on close).
    SaveCheckpointDialog *createSaveDialog(const ckpt::Value &value = {},
                                           const QString &label = {});
    void showSaveDialog();
    void focusFilter();
    void showComparison();

    CheckpointTreeModel *model() const { return m_model; }
    QSortFilterProxyModel *proxy() const { return m_proxy; }
    QTreeView *treeView() const { return m_tree; }
    QLineEdit *filterEdit() const { return m_filter; }
    TensorStatsView *statsView() const { return m_stats; }
    WarningBanner *banner() const { return m_banner; }
    QTreeWidget *comparisonTree() const { return m_compareTree; }

    void setRecentCheckpoints(const QStringList &paths);
    void saveState();

Q_SIGNALS:
    /// Every file of an openFiles() call read (and compared).
    void checkpointsLoaded();
    void loadFailed(const QString &message);
    void statusMessage(const QString &message);
    /// A file was opened or saved: the recent list changed.
    void recentCheckpointsChanged();
    /// Statistics of the selected tensor arrived.
    void tensorStatsReady();
    void checkpointSaved(const QString &path);
    /// Export… was chosen for the checkpoint file at `path` (the main window opens the dialog).
    void exportRequested(const QString &path);

private:
    /// Open, Recent, the file's name (or a chooser when several are open), the key filter, Load
    /// into Model and Save As.
    QHBoxLayout *buildTopBar();
    /// What shows while nothing is open: Open, Compare and the recent files.
    void buildEmptyState();
    /// The key tree beside the summary and the selected tensor's statistics (m_mainSplitter).
    void buildStructurePane();
    QWidget *buildComparePane();
    void connectSignals();
    void showCheckpoint();
    void updateSummary();
    void updateSelection();
    void updateBanner();
    void buildComparison();
    void updateRecentMenu();

    Settings *m_settings;
    CheckpointOpenJob *m_openJob;
    TensorStatsJob *m_statsJob;
    QList<LoadedCheckpoint> m_checkpoints;
    std::optional<CheckpointComparison> m_comparison;
    int m_current = -1;
    QStringList m_recent;

    QStackedWidget *m_stack;
    EmptyStatePage *m_empty;
    QWidget *m_content;
    WarningBanner *m_banner;
    QPushButton *m_open;
    QPushButton *m_recentButton;
    QMenu *m_recentMenu;
    QComboBox *m_fileCombo;
    QLineEdit *m_filter;
    QPushButton *m_loadButton;
    QPushButton *m_exportButton;
    QPushButton *m_saveButton;
    QProgressBar *m_progress;
    QPushButton *m_cancel;
    ElidedLabel *m_fileLabel;
    QTabWidget *m_tabs;
    QSplitter *m_mainSplitter;
    QSplitter *m_sideSplitter;
    CheckpointTreeModel *m_model;
    QSortFilterProxyModel *m_proxy;
    QTreeView *m_tree;
    QLabel *m_summary;
    TensorStatsView *m_stats;
    QLabel *m_compareSummary;
    QTreeWidget *m_compareTree;
    QWidget *m_recentList;
};

} // namespace ifs
