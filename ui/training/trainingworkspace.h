#pragma once

#include "dataset/datasetlayout.h"
#include "training/evaluation.h"
#include "training/training.h"

#include <QIcon>
#include <QList>
#include <QWidget>

#include <vector>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QFrame;
class QGroupBox;
class QHBoxLayout;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QScrollArea;
class QSpinBox;
class QSplitter;
class QStackedWidget;
class QTabWidget;
class QToolButton;

namespace ifs {

class ExportDialog;
/// The Training workspace's icon (themed "ifs-training", else drawn from built-in SVG).
QIcon trainingIcon();

class BatchView;
class CurveChart;
class EvaluationView;
class LrFinderDialog;
class MislabelView;
class PredictPanel;
class Settings;
class TrainingJob;
class WarningBanner;

/// The Training workspace: train a classifier on the dataset open in the Datasets workspace.
///
/// On the left a form with every setting of a run (model, data, optimizer, schedule, device,
/// output); the transforms are the ones the Transforms workspace saved for the dataset. On the
/// right the device actually used, progress, live curves (loss per step with a bias-corrected
/// moving average, accuracy and loss per epoch, learning rate, images/s, earlier runs overlaid),
/// the evaluation after each epoch (confusion matrix, per-class table, misclassified images) and
/// prediction with the run's checkpoints. Runs can be paused, stopped (optionally saving the
/// exact position) and resumed from a checkpoint. Training runs on a thread of its own; nothing
/// here blocks the GUI thread.
class TrainingWorkspace : public QWidget
{
    Q_OBJECT

public:
    explicit TrainingWorkspace(Settings *settings, QWidget *parent = nullptr);
    ~TrainingWorkspace() override;

    /// A dataset finished scanning: train on it (the form keeps its settings).
    void setDataset(const QString &root, const DatasetScan &scan);
    /// No dataset: the empty page (a running run goes on).
    void clearDataset();
    bool hasDataset() const { return !m_root.isEmpty(); }
    QString datasetRoot() const { return m_root; }
    /// Whether the dataset brings its own validation folder (else valSplit holds images out).
    bool hasValFolder() const { return !m_valSplit.isEmpty(); }

    /// The run the form describes. The run folder is left empty when the form's is (a fresh
    /// one is made at start); the transforms are the dataset's saved ones.
    TrainConfig config() const;
    /// Fills the form (not the data root nor the transforms, which follow the dataset).
    void setConfig(const TrainConfig &config);
    /// Sets the form's class weighting (the Datasets workspace's remedy for an imbalance).
    void setClassWeighting(ClassWeighting weighting);
    /// A new run folder: <data>/ImageFolderStudio/runs/<dataset>-<yyyyMMdd-hhmmss>.
    QString defaultRunFolder() const;

    /// Starts a run with the form's settings; false (with the reason in the banner) when it
    /// cannot start.
    bool startRun();
    /// Starts a run with `config` as is (its dataRoot, transforms and folder).
    bool startRun(const TrainConfig &config);
    void togglePause();
    /// Ends the run after the current batch; with `saveCheckpoint` last.pth keeps the exact
    /// position inside the epoch.
    void stopRun(bool saveCheckpoint = false);
    bool isRunning() const;
    bool isPaused() const;
    /// Blocks until the training run has returned (tests); false on timeout.
    bool waitForRun(int milliseconds);

    /// Opens the resume dialog and starts the run it describes.
    void resumeInteractive();
    /// Resumes from one of our checkpoints: exactly (same folder, the curves continue) or from
    /// its weights only (a new run), until `epochs`.
    bool resumeFrom(const QString &checkpoint, bool weightsOnly, int epochs);

    /// Draws an earlier run's curves (its folder's metrics.csv and steps.csv) dashed.
    Status overlayRun(const QString &folder);
    void overlayRunInteractive();
    void clearOverlays();
    /// Shows the first training batch a run with these settings would get (its split, pipeline,
    /// batch size, sampler and seed): the batch view.
    void showBatch();
    /// The batch view, once showBatch() made it (tests).
    BatchView *batchView() const { return m_batchView; }

    /// The folder of the current or last run; empty before the first.
    QString runFolder() const { return m_runFolder; }
    const TrainStart &lastStart() const { return m_start; }
    QString bestCheckpoint() const { return m_bestCheckpoint; }
    QString lastCheckpoint() const { return m_lastCheckpoint; }
    int epochsDone() const { return m_epochsDone; }

    void saveState();

    // Reached by tests, screenshots and the main window.
    QPushButton *startButton() const { return m_startButton; }
    QPushButton *pauseButton() const { return m_pauseButton; }
    QSpinBox *processesSpin() const { return m_processes; }
    /// The `ifstudio-cli` that runs the other processes of a data-parallel run (tests; default:
    /// the one beside the application).
    void setCommandLineTool(const QString &path);
    QPushButton *stopButton() const { return m_stopButton; }
    QPushButton *saveStopButton() const { return m_saveStopButton; }
    QPushButton *resumeButton() const { return m_resumeButton; }
    QWidget *settingsPanel() const { return m_form; }
    QComboBox *modelCombo() const { return m_model; }
    QSpinBox *epochsSpin() const { return m_epochs; }
    QSpinBox *batchSizeSpin() const { return m_batchSize; }
    QComboBox *deviceCombo() const { return m_device; }
    QComboBox *ampCombo() const { return m_amp; }
    QComboBox *optimizerCombo() const { return m_optimizer; }
    QLineEdit *lrEdit() const { return m_lr; }
    /// "Find…" next to the learning rate: opens the LR finder on the form's settings.
    QPushButton *findLrButton() const { return m_findLrButton; }
    /// Opens the LR finder (an LrFinderDialog, deleted on close) on config(); its choice sets the
    /// learning rate. Null without a dataset or while a run goes on.
    LrFinderDialog *openLrFinder();
    /// Opens the Export dialog (an ExportDialog, deleted on close) on the run's best checkpoint.
    /// Null without one or while a run goes on.
    ExportDialog *openExportDialog();
    QPushButton *exportButton() const { return m_exportButton; }
    QLineEdit *runFolderEdit() const { return m_runFolderEdit; }
    QDoubleSpinBox *valSplitSpin() const { return m_valSplitSpin; }
    QLabel *deviceLabel() const { return m_deviceLabel; }
    QLabel *deviceNoteLabel() const { return m_deviceNote; }
    QLabel *progressLabel() const { return m_progressLabel; }
    QLabel *statusLabel() const { return m_statusLabel; }
    QProgressBar *progressBar() const { return m_progress; }
    WarningBanner *banner() const { return m_banner; }
    QTabWidget *tabs() const { return m_tabs; }
    CurveChart *lossChart() const { return m_lossChart; }
    CurveChart *accuracyChart() const { return m_accuracyChart; }
    CurveChart *epochLossChart() const { return m_epochLossChart; }
    CurveChart *lrChart() const { return m_lrChart; }
    CurveChart *speedChart() const { return m_speedChart; }
    QList<CurveChart *> charts() const;
    EvaluationView *evaluationView() const { return m_evaluation; }
    PredictPanel *predictPanel() const { return m_predict; }
    MislabelView *mislabelView() const { return m_mislabel; }
    QPlainTextEdit *logView() const { return m_log; }
    /// Series ids of the live run in the charts.
    struct SeriesIds
    {
        int lossRaw = -1, lossSmooth = -1;
        int trainAccuracy = -1, valAccuracy = -1;
        int trainLoss = -1, valLoss = -1;
        int lr = -1, speed = -1;
    };
    const SeriesIds &seriesIds() const { return m_ids; }

Q_SIGNALS:
    void runStarted(const ifs::TrainStart &start);
    /// Steps arrived (coalesced, about 10 per second); `last` is the newest.
    void progressChanged(const ifs::StepProgress &last);
    void epochFinished(const ifs::EpochReport &report);
    void runFinished(const ifs::TrainFinish &finish);
    void runningChanged(bool running);
    /// A dataset to train on was set (true) or cleared (false).
    void datasetChanged(bool hasDataset);
    void statusMessage(const QString &message);
    void openFolderRequested();
    void openSampleRequested();
    /// "Edit in the Transforms workspace".
    void editTransformsRequested();

protected:
    void showEvent(QShowEvent *event) override;

private:
    QWidget *buildEmptyPage();
    QWidget *buildWorkspacePage();
    /// The title and the run's buttons (Start, Pause, Stop, Save and Stop, Resume).
    QHBoxLayout *buildHeader(QWidget *page);
    /// The run's device, progress bar and status line.
    QFrame *buildRunBox(QWidget *page);
    /// The settings form: one group box per part of the TrainConfig.
    QWidget *buildForm();
    QGroupBox *buildModelBox(QWidget *form);
    QGroupBox *buildDataBox(QWidget *form);
    QGroupBox *buildOptimisationBox(QWidget *form);
    QGroupBox *buildScheduleBox(QWidget *form);
    /// Class weights, the sampler and early stopping.
    QGroupBox *buildBalanceBox(QWidget *form);
    QGroupBox *buildDeviceBox(QWidget *form);
    QGroupBox *buildOutputBox(QWidget *form);
    QWidget *buildCurves();
    void updateControls();
    void updateModelDescription();
    void updateStartFrom();
    void updateFinetuneFields();
    void updateOptimizerFields();
    void updateScheduleFields();
    void updateDeviceHint();
    void updateTransforms();
    /// What "Evaluate Checkpoint…" runs on: the val folder, else the split `run` (or the form)
    /// holds out.
    void updateValidationSource(const TrainConfig *run = nullptr);
    void setRunning(bool running);
    void appendLog(const QString &line);

    void onStarted(const TrainStart &start);
    void onSteps(const QList<StepProgress> &steps);
    void onEpoch(const EpochReport &report);
    void onFinished(const TrainFinish &finish);
    void addHistory(const RunHistory &history);

    Settings *m_settings;
    TrainingJob *m_job;
    QString m_root;
    DatasetScan m_scan;
    QString m_valSplit; // the scan's validation split; empty without one
    QString m_runFolder;
    TrainStart m_start;
    QString m_bestCheckpoint;
    QString m_lastCheckpoint;
    int m_epochsDone = 0;
    bool m_transientStatus = false; // the status line says what the core is doing right now
    SeriesIds m_ids;
    struct Overlay
    {
        CurveChart *chart;
        int id;
    };
    QList<Overlay> m_overlays;
    int m_overlayCount = 0;

    QStackedWidget *m_pages;
    QLabel *m_title;
    WarningBanner *m_banner;
    QPushButton *m_startButton;
    QPushButton *m_pauseButton;
    QPushButton *m_stopButton;
    QPushButton *m_saveStopButton;
    QPushButton *m_resumeButton;
    QPushButton *m_exportButton;
    QLabel *m_deviceLabel;
    QLabel *m_deviceNote;
    QProgressBar *m_progress;
    QLabel *m_progressLabel;
    QLabel *m_statusLabel;
    QToolButton *m_openFolderButton;
    QSplitter *m_splitter;
    QScrollArea *m_formScroll;
    QWidget *m_form;
    QTabWidget *m_tabs;
    EvaluationView *m_evaluation;
    PredictPanel *m_predict;
    MislabelView *m_mislabel;
    QPlainTextEdit *m_log;
    CurveChart *m_lossChart;
    CurveChart *m_accuracyChart;
    CurveChart *m_epochLossChart;
    CurveChart *m_lrChart;
    CurveChart *m_speedChart;

    // The form
    QComboBox *m_model;
    QLabel *m_modelDescription;
    QComboBox *m_startFrom; ///< random, ImageNet V1 / V2 (pretrained.h), or a file
    QWidget *m_weightsRow;
    QFormLayout *m_modelForm = nullptr;
    QComboBox *m_finetune = nullptr; ///< FinetuneMode; shown when the run starts from weights
    QSpinBox *m_unfreezeEpoch = nullptr;
    QDoubleSpinBox *m_backboneLrFactor = nullptr;
    QLineEdit *m_weights;
    QSpinBox *m_epochs;
    QSpinBox *m_batchSize;
    QSpinBox *m_workers;
    QLabel *m_valLabel;
    QDoubleSpinBox *m_valSplitSpin;
    QFormLayout *m_dataForm;
    QPlainTextEdit *m_trainTransforms;
    BatchView *m_batchView = nullptr;
    QPlainTextEdit *m_valTransforms;
    QComboBox *m_optimizer;
    QLineEdit *m_lr;
    QPushButton *m_findLrButton;
    QDoubleSpinBox *m_momentum;
    QCheckBox *m_nesterov;
    QLineEdit *m_weightDecay;
    QDoubleSpinBox *m_labelSmoothing;
    QDoubleSpinBox *m_gradClip;
    QComboBox *m_classWeighting;
    QComboBox *m_sampler;
    QComboBox *m_earlyStopping;
    QSpinBox *m_patience;
    QDoubleSpinBox *m_minDelta;
    QComboBox *m_schedule;
    QDoubleSpinBox *m_warmup;
    QSpinBox *m_stepEpochs;
    QDoubleSpinBox *m_stepGamma;
    QFormLayout *m_scheduleForm;
    QComboBox *m_device;
    QComboBox *m_memoryFormat;
    QComboBox *m_amp;
    QSpinBox *m_seed;
    QSpinBox *m_processes = nullptr; ///< local ranks of a data-parallel run (1: one process)
    QLineEdit *m_runFolderEdit;
    QSpinBox *m_saveEvery;
};

} // namespace ifs
