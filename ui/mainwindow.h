#pragma once

#include <QMainWindow>

#include <functional>
#include <memory>

class QLabel;
class QMenu;
class QStackedWidget;

namespace ifs {

class Settings;

class CheckpointsWorkspace;
class DatasetsWorkspace;
class TrainingWorkspace;
class TransformsWorkspace;
class WorkspaceBar;

/// The main window: a workspace bar on the left (Datasets now; Transforms, Checkpoints and
/// Training join it), menus, a status bar, drag and drop of folders, and persisted settings.
class MainWindow : public QMainWindow
{
    Q_OBJECT

public:
    explicit MainWindow(QWidget *parent = nullptr);
    ~MainWindow() override;

    void openDataset(const QString &path);
    /// Exports Debian's Fashion-MNIST (once) with a progress dialog, then opens it.
    void openSampleDataset();
    void showOpenDialog();

    /// After the dataset scan, shows `view` ("images": the first class and image; "health": a
    /// finished health check; "transforms": the Transforms workspace previewing the first image;
    /// "checkpoints": the checkpoints opened by openCheckpoints(), "checkpoint-load" and
    /// "checkpoint-save": its dialogs, which are then what the screenshot shows; "training": a
    /// small_cnn run on the dataset, taken during its third epoch; "evaluation": the evaluation
    /// after a two-epoch run, its worst confusion selected; "lr-finder": the LR finder's dialog on
    /// the Training form's settings with small_cnn, after its ramp),
    /// saves a screenshot of the window and quits with 0 (1 if it could not save). For the README
    /// and for looking at the app as a user sees it.
    void takeScreenshotAndQuit(const QString &path, const QString &view = {}, int settleMs = 2500);

    /// Opens checkpoint files in the Checkpoints workspace; several are compared.
    void openCheckpoints(const QStringList &paths);
    /// Whether `path` names a checkpoint file by its extension (.pt, .pth, .tar, .ckpt, .bin,
    /// .safetensors).
    static bool isCheckpointPath(const QString &path);

    DatasetsWorkspace *datasets() const { return m_datasets; }
    CheckpointsWorkspace *checkpoints() const { return m_checkpoints; }
    TransformsWorkspace *transforms() const { return m_transforms; }
    TrainingWorkspace *training() const { return m_training; }
    /// Shows a workspace: 0 Datasets, 1 Transforms, 2 Checkpoints, 3 Training.
    void showWorkspace(int index);

protected:
    void closeEvent(QCloseEvent *event) override;
    void dragEnterEvent(QDragEnterEvent *event) override;
    void dropEvent(QDropEvent *event) override;

private:
    /// The four workspaces in the stack, each with its button in the bar (Ctrl+1 … Ctrl+4).
    void addWorkspaces();
    /// The workspaces follow the open dataset and report to the status bar and the title.
    void connectWorkspaces();
    void buildMenus();
    void buildFileMenu();
    /// Open, Compare, and the actions on the open checkpoint (enabled once one is loaded).
    void buildCheckpointMenu();
    void buildDatasetMenu();
    /// Export, import and the preview's actions (enabled while a dataset is open).
    void buildTransformsMenu();
    /// Start, Pause, Stop, Resume, Overlay: enabled as the run and the dataset allow.
    void buildTrainingMenu();
    /// One shortcut per workspace (Ctrl+1 … Ctrl+4).
    void buildViewMenu();
    void updateRecentMenu();
    void showPreferences();
    void screenshotExport(const QString &path, int settleMs);
    void screenshotLrFinder(const QString &path, int settleMs,
                            const std::function<void()> &grabWindow);
    void screenshotTrainingRun(const QString &view, const std::function<void()> &grabAndQuit);
    void screenshotPolicies(const QString &view, const QString &path, int settleMs,
                            const std::function<void()> &grabAndQuit);
    void screenshotAfterRun(const QString &view, const std::function<void()> &once);
    void showAbout();
    void showError(const QString &title, const QString &message);
    /// Asks whether to stop a running training before closing; false: keep the window open.
    bool confirmStopTraining();

    std::unique_ptr<Settings> m_settings;
    WorkspaceBar *m_bar;
    QStackedWidget *m_stack;
    DatasetsWorkspace *m_datasets;
    TransformsWorkspace *m_transforms;
    CheckpointsWorkspace *m_checkpoints;
    TrainingWorkspace *m_training;
    QMenu *m_recentMenu = nullptr;
    QLabel *m_computeLabel;
};

} // namespace ifs
