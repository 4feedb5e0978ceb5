#include "mainwindow.h"

#include "base/settings.h"
#include "base/version.h"
#include "checkpoint/checkpointfiles.h"
#include "checkpoints/checkpointsworkspace.h"
#include "checkpoints/checkpointtreemodel.h"
#include "checkpoints/loadintomodeldialog.h"
#include "checkpoints/savecheckpointdialog.h"
#include "common/backgroundjob.h"
#include "common/batchview.h"
#include "common/icons.h"
#include "common/workspacebar.h"
#include "dataset/sampledata.h"
#include "datasets/datasetsworkspace.h"
#include "datasets/healthpanel.h"
#include "datasets/thumbnailview.h"
#include "torch/runtime.h"
#include "training/confusionmatrixview.h"
#include "training/evaluationview.h"
#include "training/exportdialog.h"
#include "training/lrfinderdialog.h"
#include "training/mislabelview.h"
#include "training/predictpanel.h"
#include "training/trainingworkspace.h"
#include "transforms/pipelineeditor.h"
#include "transforms/transformjobs.h"
#include "transforms/transformsworkspace.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressDialog>
#include <QPushButton>
#include <QScreen>
#include <QSpinBox>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTimer>

#include <atomic>
#include <thread>

namespace ifs {

MainWindow::MainWindow(QWidget *parent)
    : QMainWindow(parent)
    , m_settings(std::make_unique<Settings>())
    , m_bar(new WorkspaceBar(this))
    , m_stack(new QStackedWidget(this))
    , m_computeLabel(new QLabel(this))
{
    setWindowTitle(tr("ImageFolder Studio"));
    setWindowIcon(themedIcon(QStringLiteral("ifstudio")));
    setAcceptDrops(true);
    setMinimumSize(900, 560);

    addWorkspaces();

    auto *central = new QWidget(this);
    auto *layout = new QHBoxLayout(central);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addWidget(m_bar);
    layout->addWidget(m_stack, 1);
    setCentralWidget(central);

    m_computeLabel->setText(
        QStringLiteral("%1 · %2 threads").arg(torchDescription()).arg(computeThreads()));
    statusBar()->addPermanentWidget(m_computeLabel);
    statusBar()->showMessage(tr("Open a dataset folder, or drop one on the window"));

    connectWorkspaces();

    buildMenus();
    updateRecentMenu();
    if (!restoreGeometry(m_settings->windowGeometry())) {
        // First start: a comfortable size, but never larger than the screen.
        QSize size(1360, 860);
        if (const QScreen *screen = QGuiApplication::primaryScreen())
            size = size.boundedTo(screen->availableSize() * 0.92);
        resize(size.expandedTo(minimumSize()));
    }
    restoreState(m_settings->windowState());
}

void MainWindow::addWorkspaces()
{
    m_datasets = new DatasetsWorkspace(m_settings.get(), this);
    m_stack->addWidget(m_datasets);
    m_bar->addWorkspace(themedIcon(QStringLiteral("folder-pictures")), tr("Datasets"),
                        QStringLiteral("Ctrl+1"));
    m_transforms = new TransformsWorkspace(m_settings.get(), this);
    m_stack->addWidget(m_transforms);
    m_bar->addWorkspace(themedIcon(QStringLiteral("transform-crop-and-resize")), tr("Transforms"),
                        QStringLiteral("Ctrl+2"));
    m_checkpoints = new CheckpointsWorkspace(m_settings.get(), this);
    m_stack->addWidget(m_checkpoints);
    m_bar->addWorkspace(themedIcon(QStringLiteral("document-open")), tr("Checkpoints"),
                        QStringLiteral("Ctrl+3"));
    m_training = new TrainingWorkspace(m_settings.get(), this);
    m_stack->addWidget(m_training);
    m_bar->addWorkspace(trainingIcon(), tr("Training"), QStringLiteral("Ctrl+4"));
    connect(m_bar, &WorkspaceBar::currentChanged, this, [this](int index) {
        // An edit of the pipelines still waiting to be saved is what a run must use.
        if (index == 3)
            m_transforms->saveState();
    });
    connect(m_bar, &WorkspaceBar::currentChanged, m_stack, &QStackedWidget::setCurrentIndex);
}

void MainWindow::connectWorkspaces()
{
    // The Export dialog lives with training (ui/training/); the Checkpoints workspace asks for it.
    connect(m_checkpoints, &CheckpointsWorkspace::exportRequested, this,
            [this](const QString &path) {
                auto *dialog = new ExportDialog(path, this);
                dialog->setAttribute(Qt::WA_DeleteOnClose);
                dialog->open();
            });
    connect(m_datasets, &DatasetsWorkspace::statusMessage, this,
            [this](const QString &message) { statusBar()->showMessage(message, 8000); });
    connect(m_datasets, &DatasetsWorkspace::datasetOpened, this, [this](const QString &root) {
        m_settings->addRecentDataset(root);
        m_settings->setLastOpenFolder(QFileInfo(root).absolutePath());
        updateRecentMenu();
        setWindowTitle(tr("%1 — ImageFolder Studio").arg(QFileInfo(root).fileName()));
    });
    connect(m_datasets, &DatasetsWorkspace::scanFailed, this,
            [this](const QString &message) { showError(tr("Cannot open the dataset"), message); });
    connect(m_datasets, &DatasetsWorkspace::openFolderRequested, this, &MainWindow::showOpenDialog);
    connect(m_datasets, &DatasetsWorkspace::openSampleRequested, this,
            &MainWindow::openSampleDataset);
    connect(m_datasets, &DatasetsWorkspace::openRecentRequested, this, &MainWindow::openDataset);

    // The Transforms workspace follows the open dataset and its current image.
    connect(m_datasets, &DatasetsWorkspace::scanFinished, this,
            [this] { m_transforms->setDataset(m_datasets->datasetRoot(), m_datasets->scan()); });
    connect(m_datasets, &DatasetsWorkspace::scanFailed, m_transforms,
            &TransformsWorkspace::clearDataset);
    connect(m_datasets->thumbnailView(), &ThumbnailView::currentSampleChanged, this,
            [this](int sampleRow) {
                if (sampleRow >= 0)
                    m_transforms->showSample(m_datasets->currentIndex(), sampleRow);
            });
    connect(m_transforms, &TransformsWorkspace::statusMessage, this,
            [this](const QString &message) { statusBar()->showMessage(message, 8000); });
    connect(m_transforms, &TransformsWorkspace::openFolderRequested, this,
            &MainWindow::showOpenDialog);
    connect(m_transforms, &TransformsWorkspace::openSampleRequested, this,
            &MainWindow::openSampleDataset);

    // The Training workspace trains on the open dataset.
    connect(m_datasets, &DatasetsWorkspace::scanFinished, this,
            [this] { m_training->setDataset(m_datasets->datasetRoot(), m_datasets->scan()); });
    connect(m_datasets, &DatasetsWorkspace::scanFailed, m_training,
            &TrainingWorkspace::clearDataset);
    connect(m_training, &TrainingWorkspace::statusMessage, this,
            [this](const QString &message) { statusBar()->showMessage(message, 8000); });
    connect(m_training, &TrainingWorkspace::openFolderRequested, this, &MainWindow::showOpenDialog);
    connect(m_training, &TrainingWorkspace::openSampleRequested, this,
            &MainWindow::openSampleDataset);
    connect(m_training, &TrainingWorkspace::editTransformsRequested, this,
            [this] { showWorkspace(1); });
    // The imbalance finding's remedy: the Training workspace with balanced class weights.
    connect(m_datasets, &DatasetsWorkspace::trainBalancedRequested, this, [this] {
        m_training->setClassWeighting(ClassWeighting::InverseFrequency);
        showWorkspace(3);
        statusBar()->showMessage(tr("Class weights set to Balanced: start the run when ready"),
                                 8000);
    });

    connect(m_checkpoints, &CheckpointsWorkspace::statusMessage, this,
            [this](const QString &message) { statusBar()->showMessage(message, 8000); });
    connect(m_checkpoints, &CheckpointsWorkspace::checkpointsLoaded, this, [this] {
        if (const LoadedCheckpoint *file = m_checkpoints->current())
            setWindowTitle(tr("%1 — ImageFolder Studio").arg(file->label));
    });
}

MainWindow::~MainWindow() = default;

void MainWindow::buildMenus()
{
    buildFileMenu();
    buildCheckpointMenu();
    buildDatasetMenu();
    buildTransformsMenu();
    buildTrainingMenu();
    buildViewMenu();

    QMenu *edit = menuBar()->addMenu(tr("&Settings"));
    edit->addAction(tr("&Preferences…"), this, &MainWindow::showPreferences)
        ->setShortcut(QKeySequence::Preferences);

    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About ImageFolder Studio"), this, &MainWindow::showAbout);
    help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

void MainWindow::buildFileMenu()
{
    QMenu *file = menuBar()->addMenu(tr("&File"));
    QAction *open = file->addAction(themedIcon(QStringLiteral("document-open")),
                                    tr("&Open Dataset…"), this, &MainWindow::showOpenDialog);
    open->setShortcut(QKeySequence::Open);
    m_recentMenu = file->addMenu(tr("Open &Recent"));
    file->addAction(tr("Open &Sample Dataset (Fashion-MNIST)"), this,
                    &MainWindow::openSampleDataset);
    file->addSeparator();
    QAction *exportAction = file->addAction(tr("&Export class_to_idx…"), m_datasets,
                                            &DatasetsWorkspace::exportClassToIdx);
    exportAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    file->addSeparator();
    QAction *quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
}

void MainWindow::buildCheckpointMenu()
{
    QMenu *checkpoint = menuBar()->addMenu(tr("&Checkpoint"));
    checkpoint
        ->addAction(tr("&Open Checkpoint…"), this,
                    [this] {
                        showWorkspace(2);
                        m_checkpoints->showOpenDialog();
                    })
        ->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
    checkpoint->addAction(tr("&Compare Checkpoints…"), this, [this] {
        showWorkspace(2);
        m_checkpoints->showCompareDialog();
    });
    checkpoint->addSeparator();
    QList<QAction *> needCheckpoint;
    needCheckpoint.append(checkpoint->addAction(tr("&Load into Model…"), this, [this] {
        showWorkspace(2);
        m_checkpoints->showLoadDialog();
    }));
    needCheckpoint.last()->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_L));
    needCheckpoint.append(checkpoint->addAction(tr("&Save Checkpoint As…"), this, [this] {
        showWorkspace(2);
        m_checkpoints->showSaveDialog();
    }));
    needCheckpoint.last()->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_S));
    needCheckpoint.append(checkpoint->addAction(tr("&Find Key"), this, [this] {
        showWorkspace(2);
        m_checkpoints->focusFilter();
    }));
    needCheckpoint.last()->setShortcut(QKeySequence::Find);
    for (QAction *action : std::as_const(needCheckpoint))
        action->setEnabled(false);
    connect(m_checkpoints, &CheckpointsWorkspace::checkpointsLoaded, this, [needCheckpoint] {
        for (QAction *action : needCheckpoint)
            action->setEnabled(true);
    });
}

void MainWindow::buildDatasetMenu()
{
    QMenu *dataset = menuBar()->addMenu(tr("&Dataset"));
    QAction *rescan = dataset->addAction(tr("&Rescan"), m_datasets, &DatasetsWorkspace::rescan);
    rescan->setShortcut(QKeySequence::Refresh);
    QAction *health
        = dataset->addAction(tr("Check &Health"), m_datasets, &DatasetsWorkspace::startHealthCheck);
    health->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_H));
    QAction *all = dataset->addAction(tr("Show &All Classes"), m_datasets,
                                      [this] { m_datasets->selectClass(-1); });
    all->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_A));
    dataset->addAction(tr("&Close Dataset"), this, [this] {
        m_datasets->closeDataset();
        m_transforms->clearDataset();
        m_training->clearDataset();
    });
}

void MainWindow::buildTransformsMenu()
{
    QMenu *transforms = menuBar()->addMenu(tr("&Transforms"));
    QList<QAction *> needDataset;
    needDataset.append(transforms->addAction(tr("&Export Python…"), m_transforms,
                                             &TransformsWorkspace::exportPythonInteractive));
    needDataset.last()->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_E));
    needDataset.append(transforms->addAction(tr("&Import Python…"), m_transforms,
                                             &TransformsWorkspace::importPythonInteractive));
    needDataset.last()->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_I));
    needDataset.append(transforms->addAction(tr("&Reset to Defaults"), m_transforms,
                                             [this] { m_transforms->resetToDefaults(true); }));
    transforms->addSeparator();
    needDataset.append(transforms->addAction(tr("Compute &Mean/Std from Dataset…"), m_transforms,
                                             &TransformsWorkspace::computeMeanStdInteractive));
    transforms->addSeparator();
    // Preview actions bring the Transforms workspace to the front.
    auto previewAction = [this, transforms, &needDataset](const QString &text,
                                                          const QKeySequence &shortcut, auto slot) {
        QAction *action = transforms->addAction(text, m_transforms, slot);
        action->setShortcut(shortcut);
        needDataset.append(action);
        return action;
    };
    previewAction(tr("Re&seed Preview"), QKeySequence(Qt::CTRL | Qt::Key_R), [this] {
        showWorkspace(1);
        m_transforms->reseed();
    });
    previewAction(tr("&Previous Image"), QKeySequence(Qt::ALT | Qt::Key_Left), [this] {
        showWorkspace(1);
        m_transforms->showPreviousImage();
    });
    previewAction(tr("&Next Image"), QKeySequence(Qt::ALT | Qt::Key_Right), [this] {
        showWorkspace(1);
        m_transforms->showNextImage();
    });
    previewAction(tr("R&andom Image"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R), [this] {
        showWorkspace(1);
        m_transforms->showRandomImage();
    });
    for (QAction *action : std::as_const(needDataset))
        action->setEnabled(false);
    connect(m_transforms, &TransformsWorkspace::datasetChanged, this, [needDataset](bool has) {
        for (QAction *action : needDataset)
            action->setEnabled(has);
    });
}

void MainWindow::buildTrainingMenu()
{
    QMenu *training = menuBar()->addMenu(tr("T&raining"));
    QAction *start = training->addAction(tr("&Start"), this, [this] {
        showWorkspace(3);
        m_training->startRun();
    });
    QAction *pause
        = training->addAction(tr("&Pause / Resume"), m_training, &TrainingWorkspace::togglePause);
    QAction *stop
        = training->addAction(tr("S&top"), m_training, [this] { m_training->stopRun(false); });
    QAction *saveStop = training->addAction(tr("Save &and Stop"), m_training,
                                            [this] { m_training->stopRun(true); });
    training->addSeparator();
    QAction *resume = training->addAction(tr("&Resume from Checkpoint…"), this, [this] {
        showWorkspace(3);
        m_training->resumeInteractive();
    });
    QAction *overlay = training->addAction(tr("&Overlay Earlier Run…"), this, [this] {
        showWorkspace(3);
        m_training->overlayRunInteractive();
    });
    auto updateTrainingActions = [this, start, pause, stop, saveStop, resume, overlay] {
        const bool running = m_training->isRunning();
        const bool hasDataset = m_training->hasDataset();
        start->setEnabled(!running && hasDataset);
        pause->setEnabled(running);
        stop->setEnabled(running);
        saveStop->setEnabled(running);
        resume->setEnabled(!running && hasDataset);
        overlay->setEnabled(hasDataset);
    };
    updateTrainingActions();
    connect(m_training, &TrainingWorkspace::runningChanged, this, updateTrainingActions);
    connect(m_training, &TrainingWorkspace::datasetChanged, this, updateTrainingActions);
}

void MainWindow::buildViewMenu()
{
    QMenu *view = menuBar()->addMenu(tr("&View"));
    QAction *datasets = view->addAction(tr("&Datasets"), this, [this] { showWorkspace(0); });
    datasets->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_1));
    QAction *transformsView
        = view->addAction(tr("&Transforms"), this, [this] { showWorkspace(1); });
    transformsView->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_2));
    QAction *checkpointsView
        = view->addAction(tr("&Checkpoints"), this, [this] { showWorkspace(2); });
    checkpointsView->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_3));
    QAction *trainingView = view->addAction(tr("T&raining"), this, [this] { showWorkspace(3); });
    trainingView->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_4));
}

void MainWindow::showWorkspace(int index)
{
    m_bar->setCurrentIndex(index);
}

void MainWindow::updateRecentMenu()
{
    const QStringList recent = m_settings->recentDatasets();
    m_datasets->setRecentDatasets(recent);
    if (!m_recentMenu)
        return;
    m_recentMenu->clear();
    for (int i = 0; i < recent.size(); ++i) {
        const QString path = recent[i];
        QAction *action = m_recentMenu->addAction(
            QStringLiteral("&%1  %2").arg(i + 1).arg(QDir::toNativeSeparators(path)), this,
            [this, path] { openDataset(path); });
        action->setToolTip(path);
    }
    m_recentMenu->setEnabled(!recent.isEmpty());
    if (!recent.isEmpty()) {
        m_recentMenu->addSeparator();
        m_recentMenu->addAction(tr("Clear List"), this, [this] {
            for (const QString &path : m_settings->recentDatasets())
                m_settings->removeRecentDataset(path);
            updateRecentMenu();
        });
    }
}

void MainWindow::openDataset(const QString &path)
{
    if (!QFileInfo(path).isDir()) {
        if (!QFileInfo::exists(path))
            m_settings->removeRecentDataset(path);
        updateRecentMenu();
    }
    m_bar->setCurrentIndex(0);
    if (QFileInfo(path).isDir()
        && QDir::cleanPath(QFileInfo(path).absoluteFilePath()) != m_transforms->datasetRoot())
        m_transforms->clearDataset();
    m_datasets->openDataset(path);
}

bool MainWindow::isCheckpointPath(const QString &path)
{
    return !QFileInfo(path).isDir() && ckpt::hasCheckpointSuffix(path);
}

void MainWindow::openCheckpoints(const QStringList &paths)
{
    if (paths.isEmpty())
        return;
    showWorkspace(2);
    m_checkpoints->openFiles(paths);
}

void MainWindow::showOpenDialog()
{
    const QString path = QFileDialog::getExistingDirectory(this, tr("Open Dataset Folder"),
                                                           m_settings->lastOpenFolder());
    if (!path.isEmpty())
        openDataset(path);
}

void MainWindow::openSampleDataset()
{
    const QString dest = m_settings->sampleDataFolder();
    auto *dialog = new QProgressDialog(tr("Exporting Fashion-MNIST to %1…").arg(dest), tr("Cancel"),
                                       0, 100, this);
    dialog->setWindowTitle(tr("Sample Dataset"));
    dialog->setMinimumDuration(300);
    dialog->setAutoClose(false);
    dialog->setAutoReset(false);
    dialog->setValue(0);

    struct Progress
    {
        int64_t done = 0;
        int64_t total = 0;
    };
    // The dialog owns the job: closing the window with it drops the export, which cancels and
    // cleans up after itself in the background.
    auto *job = new BackgroundJob<SampleDataResult, Progress>(dialog);
    job->onProgress([dialog](const Progress &progress) {
        if (progress.total > 0)
            dialog->setValue(int(100 * progress.done / progress.total));
    });
    job->onCancelled([this, dialog] {
        dialog->deleteLater();
        statusBar()->showMessage(tr("Sample export cancelled"), 5000);
    });
    job->onFailed([this, dialog](const Error &error) {
        dialog->deleteLater();
        showError(tr("Cannot export the sample dataset"), error.message);
    });
    job->onFinished([this, dialog](const SampleDataResult &result) {
        dialog->deleteLater();
        openDataset(result.root);
    });
    connect(dialog, &QProgressDialog::canceled, job, [job] { job->requestCancel(); });
    job->start([dest](JobContext<Progress> &context) -> Result<SampleDataResult> {
        Result<SampleDataResult> result = exportFashionMnist(
            dest, {},
            [&context](int64_t done, int64_t total) {
                context.setProgress({done, total});
            },
            context.cancelFlag());
        if (context.isCancelled() || (result && result->cancelled))
            return context.cancelled();
        return result;
    });
}

void MainWindow::takeScreenshotAndQuit(const QString &path, const QString &view, int settleMs)
{
    auto grabAndQuit = [this, path, settleMs] {
        QTimer::singleShot(settleMs, this, [this, path] {
            const bool ok = grab().save(path);
            if (!ok)
                qWarning("Cannot save the screenshot to %s", qPrintable(path));
            QApplication::exit(ok ? 0 : 1);
        });
    };
    if (view == u"export") {
        screenshotExport(path, settleMs);
        return;
    }
    if (view.startsWith(u"checkpoint")) {
        // The dialogs are windows of their own: the screenshot is theirs.
        auto arrangeCheckpoints = [this, path, view, settleMs] {
            showWorkspace(2);
            QWidget *target = this;
            if (view == u"checkpoint-load") {
                LoadIntoModelDialog *dialog = m_checkpoints->createLoadDialog();
                if (dialog) {
                    dialog->show();
                    if (dialog->target().isEmpty()) {
                        dialog->setOperations({});
                    } else {
                        dialog->autoRepair();
                    }
                    target = dialog;
                }
            } else if (view == u"checkpoint-save") {
                // The state dict chosen in the tree, as a user saving the weights would.
                if (const LoadedCheckpoint *file = m_checkpoints->current()) {
                    const QList<ckpt::StateDictCandidate> candidates
                        = ckpt::findStateDicts(file->file.root);
                    if (!candidates.isEmpty())
                        m_checkpoints->selectPath(candidates.constFirst().path);
                }
                if (SaveCheckpointDialog *dialog = m_checkpoints->createSaveDialog()) {
                    dialog->show();
                    target = dialog;
                }
            } else {
                // A tensor selected, as a user exploring the file would.
                m_checkpoints->selectFirstTensor();
            }
            QTimer::singleShot(settleMs, this, [target, path] {
                const bool ok = target->grab().save(path);
                if (!ok)
                    qWarning("Cannot save the screenshot to %s", qPrintable(path));
                QApplication::exit(ok ? 0 : 1);
            });
        };
        if (m_checkpoints->isLoading())
            connect(m_checkpoints, &CheckpointsWorkspace::checkpointsLoaded, this,
                    arrangeCheckpoints, Qt::SingleShotConnection);
        else
            arrangeCheckpoints();
        return;
    }
    auto arrange = [this, view, grabAndQuit, path, settleMs] {
        if (!m_datasets->hasDataset()) {
            grabAndQuit();
            return;
        }
        if (view == u"transforms-policies" || view == u"batch") {
            m_datasets->selectClass(0);
            ThumbnailView *thumbnails = m_datasets->thumbnailView();
            thumbnails->setCurrentIndex(thumbnails->model()->index(0, 0));
            connect(
                m_transforms, &TransformsWorkspace::previewUpdated, this,
                [this, view, path, settleMs, grabAndQuit] {
                    screenshotPolicies(view, path, settleMs, grabAndQuit);
                },
                Qt::SingleShotConnection);
            showWorkspace(1);
            return;
        }
        if (view == u"transforms") {
            // The first image of the first class, previewed in the Transforms workspace.
            m_datasets->selectClass(0);
            ThumbnailView *thumbnails = m_datasets->thumbnailView();
            thumbnails->setCurrentIndex(thumbnails->model()->index(0, 0));
            connect(m_transforms, &TransformsWorkspace::previewUpdated, this, grabAndQuit,
                    Qt::SingleShotConnection);
            showWorkspace(1);
            return;
        }
        if (view == u"health") {
            connect(m_datasets->healthPanel(), &HealthPanel::finished, this, grabAndQuit,
                    Qt::SingleShotConnection);
            m_datasets->startHealthCheck();
            return;
        }
        if (view == u"lr-finder") {
            screenshotLrFinder(path, settleMs, grabAndQuit);
            return;
        }
        if (view == u"training" || view == u"evaluation" || view == u"finetune"
            || view == u"pretrained" || view == u"distributed" || view == u"gradcam"
            || view == u"mislabel") {
            screenshotTrainingRun(view, grabAndQuit);
            return;
        }
        // Show a class and its first image, as a user exploring the dataset would.
        m_datasets->selectClass(0);
        ThumbnailView *thumbnails = m_datasets->thumbnailView();
        thumbnails->setCurrentIndex(thumbnails->model()->index(0, 0));
        grabAndQuit();
    };
    if (m_datasets->isScanning())
        connect(m_datasets, &DatasetsWorkspace::scanFinished, this, arrange,
                Qt::SingleShotConnection);
    else
        arrange();
}

/// "transforms-policies": a pasted recipe with RandomApply and TrivialAugmentWide in the Train
/// pipeline, grabbed when its preview (and strip) is in; "batch": then its batch view.
void MainWindow::screenshotPolicies(const QString &view, const QString &path, int settleMs,
                                    const std::function<void()> &grabAndQuit)
{
    auto *afterRecipe = new QObject(this);
    const auto onPreview = [this, view, path, settleMs, grabAndQuit, afterRecipe] {
        const QList<PreviewStep> &steps = m_transforms->lastPreview().trainSteps;
        if (steps.size() < 4 || steps[3].name != u"TrivialAugmentWide")
            return; // an earlier preview
        afterRecipe->deleteLater();
        if (view != u"batch") {
            grabAndQuit();
            return;
        }
        m_transforms->showBatch();
        BatchView *batch = m_transforms->batchView();
        connect(
            batch, &BatchView::batchShown, this,
            [batch, path, settleMs] {
                QTimer::singleShot(settleMs, batch, [batch, path] {
                    const bool ok = batch->grab().save(path);
                    if (!ok)
                        qWarning("Cannot save the screenshot to %s", qPrintable(path));
                    QApplication::exit(ok ? 0 : 1);
                });
            },
            Qt::SingleShotConnection);
    };
    connect(m_transforms, &TransformsWorkspace::previewUpdated, afterRecipe, onPreview);
    const QString recipe
        = QStringLiteral("transforms.Compose([\n"
                         "    transforms.RandomResizedCrop(176),\n"
                         "    transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4), "
                         "transforms.RandomGrayscale()], p=0.8),\n"
                         "    transforms.TrivialAugmentWide(),\n"
                         "    transforms.ToTensor(),\n"
                         "    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),\n"
                         "])");
    QPlainTextEdit *code = m_transforms->trainEditor()->codeEdit();
    if (code->toPlainText() == recipe)
        QTimer::singleShot(0, afterRecipe, onPreview); // saved from an earlier run: shown already
    else
        code->setPlainText(recipe);
}

/// A real run in the Training workspace, in a folder that goes with the process: "training"
/// (small_cnn, grabbed with two epochs' curves and a third under way), "evaluation" (its
/// evaluation after two epochs), "finetune" (small_cnn fine-tuned head-only from the weights
/// file in IFS_SCREENSHOT_WEIGHTS on cached features) and "pretrained" (resnet18 from ImageNet
/// weights: offline with an empty cache, grabbed with the message that says what to do),
/// "distributed" (as "training", with 2 processes: the app and an ifstudio-cli beside it).
void MainWindow::screenshotTrainingRun(const QString &view,
                                       const std::function<void()> &grabAndQuit)
{
    static QTemporaryDir runs;
    TrainConfig config = m_training->config();
    config.arch = QStringLiteral("small_cnn");
    const bool afterRun = view == u"evaluation" || view == u"gradcam" || view == u"mislabel";
    config.epochs = afterRun ? 2 : 6;
    if (view == u"finetune") {
        config.weightsPath = qEnvironmentVariable("IFS_SCREENSHOT_WEIGHTS");
        config.pretrained.clear();
        config.finetune = FinetuneMode::Head;
        // Transforms without random draws: the backbone's features are computed once.
        config.trainTransforms
            = QStringLiteral("transforms.Compose([transforms.Grayscale(num_output_channels=3), "
                             "transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])");
        config.valTransforms = config.trainTransforms;
    } else if (view == u"pretrained") {
        config.arch = QStringLiteral("resnet18");
        config.pretrained = QStringLiteral("IMAGENET1K_V1");
        config.weightsPath.clear(); // a form restored from an earlier session may name a file
        config.finetune = FinetuneMode::HeadThenFull;
        config.backboneLrFactor = 0.1;
    }
    config.outDir = runs.filePath(QFileInfo(m_datasets->datasetRoot()).fileName()
                                  + QStringLiteral("-screenshot-") + view);
    TrainConfig shown = config;
    shown.outDir.clear();
    m_training->setConfig(shown);
    m_training->processesSpin()->setValue(view == u"distributed" ? 2 : 1);
    showWorkspace(3);
    auto done = std::make_shared<bool>(false);
    auto once = [done, grabAndQuit] {
        if (!*done) {
            *done = true;
            grabAndQuit();
        }
    };
    if (view == u"training" || view == u"finetune" || view == u"distributed") {
        // Two epochs' curves and a third under way.
        connect(m_training, &TrainingWorkspace::progressChanged, this,
                [this, once](const StepProgress &last) {
                    if (m_training->epochsDone() >= 2 && last.batch * 3 >= last.batches)
                        once();
                });
    } else if (view == u"evaluation") {
        connect(m_training, &TrainingWorkspace::runFinished, this, [this, once] {
            EvaluationView *evaluation = m_training->evaluationView();
            m_training->tabs()->setCurrentWidget(evaluation);
            const auto [t, p] = evaluation->matrixView()->worstCell();
            evaluation->showCell(t, p);
            once();
        });
    }
    if (view == u"gradcam" || view == u"mislabel") {
        screenshotAfterRun(view, once);
        if (!m_training->startRun(config))
            once();
        return;
    }
    connect(m_training, &TrainingWorkspace::runFinished, this, once);
    if (!m_training->startRun(config))
        once();
}

/// The Export dialog on the checkpoint opened in the Checkpoints workspace (both formats, into
/// the folder it proposes beside the checkpoint), grabbed once the export and its check ended.
void MainWindow::screenshotExport(const QString &path, int settleMs)
{
    auto arrange = [this, path, settleMs] {
        showWorkspace(2);
        const LoadedCheckpoint *file = m_checkpoints->current();
        if (!file || file->path.isEmpty()) {
            QApplication::exit(1);
            return;
        }
        auto *dialog = new ExportDialog(file->path, this);
        dialog->show();
        connect(dialog, &ExportDialog::exportEnded, this, [dialog, path, settleMs] {
            QTimer::singleShot(settleMs, dialog, [dialog, path] {
                const bool ok = dialog->grab().save(path);
                if (!ok)
                    qWarning("Cannot save the screenshot to %s", qPrintable(path));
                QApplication::exit(ok ? 0 : 1);
            });
        });
        dialog->startExport();
    };
    if (m_checkpoints->isLoading())
        connect(m_checkpoints, &CheckpointsWorkspace::checkpointsLoaded, this, arrange,
                Qt::SingleShotConnection);
    else
        arrange();
}

/// After the run: "gradcam" (the Predict panel's heatmap of a validation image) and "mislabel"
/// (the Likely Mislabelled tab after relabelling the most doubtful image).
void MainWindow::screenshotAfterRun(const QString &view, const std::function<void()> &once)
{
    if (view == u"gradcam") {
        PredictPanel *predict = m_training->predictPanel();
        connect(m_training, &TrainingWorkspace::runFinished, this, [this, predict] {
            m_training->tabs()->setCurrentWidget(predict);
            predict->gradCamToggle()->setChecked(true);
            predict->predict({m_datasets->datasetRoot() + QStringLiteral("/val/Sneaker")});
        });
        connect(predict, &PredictPanel::predictionsShown, this,
                [predict] { predict->table()->setCurrentCell(0, 0); });
        connect(predict, &PredictPanel::gradCamShown, this, once);
        connect(predict, &PredictPanel::predictionFailed, this, once);
        return;
    }
    MislabelView *mislabel = m_training->mislabelView();
    connect(m_training, &TrainingWorkspace::runFinished, this, [this, mislabel] {
        m_training->tabs()->setCurrentWidget(mislabel);
        mislabel->scan();
    });
    auto scans = std::make_shared<int>(0);
    connect(mislabel, &MislabelView::scanned, this, [mislabel, scans, once] {
        mislabel->table()->selectRow(0);
        if (++*scans == 1)
            mislabel->relabelSelected();
        else
            once();
    });
    connect(mislabel, &MislabelView::failed, this, once);
}

/// The LR finder's dialog on the Training form's settings with small_cnn, saved once its ramp
/// ended: the dialog is a window of its own, so the screenshot is its.
void MainWindow::screenshotLrFinder(const QString &path, int settleMs,
                                    const std::function<void()> &grabWindow)
{
    TrainConfig config = m_training->config();
    config.arch = QStringLiteral("small_cnn");
    m_training->setConfig(config);
    showWorkspace(3);
    LrFinderDialog *dialog = m_training->openLrFinder();
    if (!dialog) {
        grabWindow();
        return;
    }
    dialog->resize(900, 640);
    connect(dialog, &LrFinderDialog::runEnded, this, [dialog, path, settleMs] {
        QTimer::singleShot(settleMs, dialog, [dialog, path] {
            const bool ok = dialog->grab().save(path);
            if (!ok)
                qWarning("Cannot save the screenshot to %s", qPrintable(path));
            QApplication::exit(ok ? 0 : 1);
        });
    });
}

void MainWindow::showPreferences()
{
    QDialog dialog(this);
    dialog.setWindowTitle(tr("Preferences"));
    auto *threads = new QSpinBox(&dialog);
    threads->setRange(0, 256);
    threads->setSpecialValueText(tr("All cores (%1)").arg(std::thread::hardware_concurrency()));
    threads->setValue(m_settings->computeThreads());
    auto *form = new QFormLayout;
    form->addRow(tr("Compute threads:"), threads);
    auto *note = new QLabel(tr("libtorch's intra-op threads for training and inference. "
                               "Takes effect now; <tt>--threads</tt> overrides it at start-up."),
                            &dialog);
    note->setWordWrap(true);
    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
    connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    auto *layout = new QVBoxLayout(&dialog);
    layout->addLayout(form);
    layout->addWidget(note);
    layout->addWidget(buttons);
    if (dialog.exec() != QDialog::Accepted)
        return;
    m_settings->setComputeThreads(threads->value());
    configureRuntime(threads->value());
    m_computeLabel->setText(
        QStringLiteral("%1 · %2 threads").arg(torchDescription()).arg(computeThreads()));
}

void MainWindow::showAbout()
{
    QMessageBox::about(
        this, tr("About ImageFolder Studio"),
        tr("<h3>ImageFolder Studio %1</h3>"
           "<p>See what torchvision makes of your image folders, check them, and move datasets, "
           "transforms and weights between this app and your PyTorch scripts.</p>"
           "<p>%2 · Qt %3</p>")
            .arg(QStringLiteral(IFS_VERSION), torchDescription(), QString::fromLatin1(qVersion())));
}

void MainWindow::showError(const QString &title, const QString &message)
{
    statusBar()->showMessage(message, 10000);
    QMessageBox box(QMessageBox::Warning, title, message, QMessageBox::Ok, this);
    box.setObjectName(QStringLiteral("errorBox"));
    box.exec();
}

bool MainWindow::confirmStopTraining()
{
    if (!m_training->isRunning())
        return true;
    QMessageBox box(QMessageBox::Question, tr("Training in Progress"),
                    tr("A training run is in progress. Stop it and close?"), QMessageBox::NoButton,
                    this);
    box.setObjectName(QStringLiteral("stopTrainingBox"));
    box.setInformativeText(tr("Save and Stop writes last.pth with the exact position inside the "
                              "epoch, so that the run can be resumed later. Stop keeps last.pth "
                              "as the last complete epoch left it."));
    QPushButton *saveStop = box.addButton(tr("Save and Stop"), QMessageBox::AcceptRole);
    QPushButton *stop = box.addButton(tr("Stop"), QMessageBox::DestructiveRole);
    box.addButton(QMessageBox::Cancel);
    box.setDefaultButton(saveStop);
    box.exec();
    if (box.clickedButton() != saveStop && box.clickedButton() != stop)
        return false;
    m_training->stopRun(box.clickedButton() == saveStop);
    return true;
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    if (m_training->isRunning()) {
        if (!confirmStopTraining()) {
            event->ignore();
            return;
        }
        // The run ends after its current batch (and the save): close then, without blocking
        // the window meanwhile.
        statusBar()->showMessage(tr("Stopping the training run; the window closes when it has "
                                    "stopped…"));
        connect(m_training, &TrainingWorkspace::runFinished, this, &QWidget::close,
                Qt::ConnectionType(Qt::QueuedConnection | Qt::SingleShotConnection));
        setEnabled(false);
        event->ignore();
        return;
    }
    m_training->saveState();
    m_datasets->cancelScan();
    m_datasets->saveState();
    m_transforms->saveState();
    m_checkpoints->cancelLoading();
    m_checkpoints->saveState();
    m_settings->setWindowGeometry(saveGeometry());
    m_settings->setWindowState(saveState());
    QMainWindow::closeEvent(event);
}

void MainWindow::dragEnterEvent(QDragEnterEvent *event)
{
    const QList<QUrl> urls = event->mimeData()->urls();
    if (urls.isEmpty() || !std::all_of(urls.cbegin(), urls.cend(), [](const QUrl &url) {
            return url.isLocalFile();
        }))
        return;
    // One folder (a dataset), or checkpoint files (several: compare them).
    if (urls.size() == 1 || std::all_of(urls.cbegin(), urls.cend(), [](const QUrl &url) {
            return isCheckpointPath(url.toLocalFile());
        }))
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent *event)
{
    const QList<QUrl> urls = event->mimeData()->urls();
    if (urls.isEmpty() || !urls.constFirst().isLocalFile())
        return;
    QStringList checkpoints;
    for (const QUrl &url : urls) {
        if (url.isLocalFile() && isCheckpointPath(url.toLocalFile()))
            checkpoints.append(url.toLocalFile());
    }
    if (!checkpoints.isEmpty()) {
        event->acceptProposedAction();
        openCheckpoints(checkpoints);
        return;
    }
    const QString path = urls.constFirst().toLocalFile();
    if (!QFileInfo(path).isDir()) {
        statusBar()->showMessage(
            tr("“%1” is a file: drop the dataset's folder instead, or a checkpoint (%2)")
                .arg(QFileInfo(path).fileName(), ckpt::checkpointSuffixText()),
            8000);
        event->ignore();
        return;
    }
    event->acceptProposedAction();
    openDataset(path);
}

} // namespace ifs
