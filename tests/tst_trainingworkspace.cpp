// The Training workspace as a user drives it (offscreen), on a tiny real ImageFolder made from
// Debian's Fashion-MNIST: a one-epoch small_cnn run started from the form, its curves, the
// evaluation (a confusion matrix that adds up to the val images, cells that list their images,
// a per-class table, the misclassified gallery), prediction with the run's checkpoint, Stop and
// Pause honoured quickly, an exact resume whose curves continue, overlays of earlier runs, the
// controls' states, and a window that asks before closing on a running run.
#include "base/settings.h"
#include "common/batchview.h"
#include "common/warningbanner.h"
#include "dataset/datasetlayout.h"
#include "dataset/sampledata.h"
#include "datasets/datasetsworkspace.h"
#include "mainwindow.h"
#include "testutil.h"
#include "training/confusionmatrixview.h"
#include "training/curvechart.h"
#include "training/evaluationview.h"
#include "training/exportdialog.h"
#include "training/lrfinderdialog.h"
#include "training/mislabelview.h"
#include "training/models.h"
#include "training/predictpanel.h"
#include "training/resumedialog.h"
#include "training/runfolder.h"
#include "training/trainingjobs.h"
#include "training/trainingworkspace.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QGuiApplication>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QRadioButton>
#include <QScopeGuard>
#include <QSettings>
#include <QSignalSpy>
#include <QSlider>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QToolButton>

#include <cmath>
#include <memory>

using namespace ifs;

namespace {

constexpr int kRunMs = 180000; // a run of a few batches; generous for loaded CI machines
constexpr int kImagesPerClass = 6;

qint64 diagonal(const ConfusionMatrixView *matrix)
{
    qint64 sum = 0;
    for (int i = 0; i < matrix->classCount(); ++i)
        sum += matrix->count(i, i);
    return sum;
}

} // namespace

class TestTrainingWorkspace : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void emptyStateOffersToOpen();
    void formReflectsTheDataset();
    void oneEpochThroughTheUi();
    void twoProcessesThroughTheUi();
    void twoProcessesStopTogether();
    void evaluateCheckpointOnDemand();
    void predictWithTheRunsCheckpoint();
    void gradCamInThePredictPanel();
    void mislabelViewRelabelsAndUndoes();
    void stopEndsTheRunQuickly();
    void pauseHoldsTheRun();
    void exactResumeContinuesTheCurves();
    void overlayEarlierRun();
    void invalidSettingsDoNotStart();
    void runFolderInUseIsRefused();
    void inputSizeAdviceInTheBanner();
    void startFromImageNetWeights();
    void fineTuningChoices();
    void closingTheWindowAsksAndStops();
    void lrFinderSuggestionSetsTheRate();
    void lrFinderPlotClickAndCancel();
    void batchViewShowsTheFirstTrainingBatch();

private:
    std::unique_ptr<TrainingWorkspace> openWorkspace();
    /// Sets the form for a quick run and returns the run folder it will use.
    QString setQuickRun(TrainingWorkspace &workspace, int epochs, const QString &name);
    bool waitFinished(QSignalSpy &spy, int ms = kRunMs);

    QTemporaryDir m_tmp;
    QString m_root;
    DatasetScan m_scan;
    qsizetype m_valCount = 0;
    std::unique_ptr<Settings> m_settings;
    /// A finished one-epoch run folder (last.pth, best.pth, metrics.csv), trained through the
    /// core on first use, so that no test needs another to have run first.
    QString trainedRun();
    QString m_trainedRun;
};

void TestTrainingWorkspace::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(QStringLiteral("ImageFolderStudioTests"));
    QCoreApplication::setApplicationName(QStringLiteral("tst_trainingworkspace"));
    QVERIFY(m_tmp.isValid());
    // A tiny real ImageFolder: the first images of each class of both splits.
    SampleDataOptions options;
    options.source = test::fashionMnistSource(m_tmp.path());
    options.limitPerClass = kImagesPerClass;
    const Result<SampleDataResult> made
        = exportFashionMnist(m_tmp.filePath(QStringLiteral("fashion")), options);
    QVERIFY2(made.ok(), qPrintable(made.errorMessage()));
    m_root = made->root;
    QCOMPARE(made->valImages, 10 * kImagesPerClass);
    const Result<DatasetScan> scan = scanDataset(detectLayout(m_root));
    QVERIFY2(scan.ok(), qPrintable(scan.errorMessage()));
    m_scan = scan.value();
    m_valCount = m_scan.index(QStringLiteral("val"))->sampleCount();
    QCOMPARE(m_valCount, qsizetype(10 * kImagesPerClass));
}

void TestTrainingWorkspace::init()
{
    QSettings().clear();
    m_settings = std::make_unique<Settings>();
}

std::unique_ptr<TrainingWorkspace> TestTrainingWorkspace::openWorkspace()
{
    auto workspace = std::make_unique<TrainingWorkspace>(m_settings.get());
    workspace->resize(1360, 860);
    workspace->show();
    workspace->setDataset(m_root, m_scan);
    return workspace;
}

QString TestTrainingWorkspace::setQuickRun(TrainingWorkspace &workspace, int epochs,
                                           const QString &name)
{
    const int model = workspace.modelCombo()->findData(QStringLiteral("small_cnn"));
    workspace.modelCombo()->setCurrentIndex(model);
    workspace.epochsSpin()->setValue(epochs);
    workspace.batchSizeSpin()->setValue(16); // 60 images: 3 batches (drop_last)
    workspace.deviceCombo()->setCurrentIndex(
        workspace.deviceCombo()->findData(QStringLiteral("cpu")));
    const QString folder = m_tmp.filePath(QStringLiteral("runs/") + name);
    workspace.runFolderEdit()->setText(folder);
    return folder;
}

QString TestTrainingWorkspace::trainedRun()
{
    if (!m_trainedRun.isEmpty())
        return m_trainedRun;
    TrainConfig config;
    config.dataRoot = m_root;
    config.arch = QStringLiteral("small_cnn");
    config.epochs = 1;
    config.batchSize = 16;
    config.device = QStringLiteral("cpu");
    config.outDir = m_tmp.filePath(QStringLiteral("runs/earlier"));
    Trainer trainer(config);
    const TrainFinish finish = trainer.run();
    if (finish.outcome != TrainOutcome::Completed) {
        qWarning("the fixture run failed: %s", qPrintable(finish.message));
        return {};
    }
    m_trainedRun = config.outDir;
    return m_trainedRun;
}

bool TestTrainingWorkspace::waitFinished(QSignalSpy &spy, int ms)
{
    return spy.count() > 0 || spy.wait(ms);
}

void TestTrainingWorkspace::emptyStateOffersToOpen()
{
    TrainingWorkspace workspace(m_settings.get());
    workspace.show();
    QVERIFY(workspace.findChild<QWidget *>(QStringLiteral("trainingEmptyPage"))->isVisible());
    QVERIFY(!workspace.startButton()->isEnabled());
    QSignalSpy open(&workspace, &TrainingWorkspace::openFolderRequested);
    QSignalSpy sample(&workspace, &TrainingWorkspace::openSampleRequested);
    workspace.findChild<QPushButton *>(QStringLiteral("trainingOpenButton"))->click();
    workspace.findChild<QPushButton *>(QStringLiteral("trainingSampleButton"))->click();
    QCOMPARE(open.count(), 1);
    QCOMPARE(sample.count(), 1);
    QVERIFY(!workspace.startRun());
}

void TestTrainingWorkspace::formReflectsTheDataset()
{
    const auto workspace = openWorkspace();
    QVERIFY(!workspace->findChild<QWidget *>(QStringLiteral("trainingEmptyPage"))->isVisible());
    QVERIFY(workspace->hasValFolder());
    // The dataset has a val folder: no split to choose.
    QVERIFY(!workspace->valSplitSpin()->isVisible());
    // Every architecture of the core, with its description.
    QCOMPARE(workspace->modelCombo()->count(), int(modelArchitectures().size()));
    QVERIFY(!workspace->findChild<QLabel *>(QStringLiteral("modelDescription"))->text().isEmpty());
    // Mixed precision on the CPU: automatic by default (bf16 where the CPU has it), float16
    // (CUDA only) not offered.
    workspace->deviceCombo()->setCurrentIndex(
        workspace->deviceCombo()->findData(QStringLiteral("cpu")));
    QVERIFY(workspace->ampCombo()->isEnabled());
    QCOMPARE(workspace->ampCombo()->currentData().toInt(), int(AmpMode::Auto));
    {
        auto *items = qobject_cast<QStandardItemModel *>(workspace->ampCombo()->model());
        QVERIFY(items);
        QVERIFY(!items->item(workspace->ampCombo()->findData(int(AmpMode::Float16)))->isEnabled());
    }
    QVERIFY(workspace->deviceLabel()->text().contains(QStringLiteral("cpu")));
    // The form is the config, and back.
    TrainConfig config = workspace->config();
    QCOMPARE(config.dataRoot, QDir::cleanPath(m_root));
    config.epochs = 7;
    config.optimizer = OptimizerKind::AdamW;
    config.lr = 3e-4;
    config.schedule = ScheduleKind::OneCycle;
    config.labelSmoothing = 0.1;
    config.seed = 42;
    workspace->setConfig(config);
    const TrainConfig back = workspace->config();
    QCOMPARE(back.epochs, 7);
    QCOMPARE(back.optimizer, OptimizerKind::AdamW);
    QCOMPARE(back.lr, 3e-4);
    QCOMPARE(back.schedule, ScheduleKind::OneCycle);
    QCOMPARE(back.labelSmoothing, 0.1);
    QCOMPARE(back.seed, uint64_t(42));
    // Transforms saved by the Transforms workspace are what a run uses, shown read-only.
    const QString train = QStringLiteral("transforms.Compose([\n    transforms.ToTensor(),\n])");
    m_settings->setTransformPipelines(m_root, {train, train});
    workspace->setDataset(m_root, m_scan);
    QCOMPARE(workspace->config().trainTransforms, train);
    auto *view = workspace->findChild<QPlainTextEdit *>(QStringLiteral("trainTransformsView"));
    QCOMPARE(view->toPlainText(), train);
    QVERIFY(view->isReadOnly());
    QSignalSpy edit(workspace.get(), &TrainingWorkspace::editTransformsRequested);
    workspace->findChild<QPushButton *>(QStringLiteral("editTransformsButton"))->click();
    QCOMPARE(edit.count(), 1);

    // Without a val folder the split is offered.
    DatasetScan plain;
    plain.splits = {QString()};
    plain.indexes.insert(QString(), m_scan.index(QStringLiteral("train")));
    workspace->setDataset(m_root + QStringLiteral("/train"), plain);
    QVERIFY(!workspace->hasValFolder());
    QVERIFY(workspace->valSplitSpin()->isVisible());
    // A default run folder under the app's data, named after the dataset.
    QVERIFY(workspace->defaultRunFolder().contains(QStringLiteral("/runs/train-")));
}

void TestTrainingWorkspace::oneEpochThroughTheUi()
{
    const auto workspace = openWorkspace();
    const QString folder = setQuickRun(*workspace, 1, QStringLiteral("first"));
    QVERIFY(workspace->startButton()->isEnabled());
    QVERIFY(!workspace->pauseButton()->isEnabled());
    QVERIFY(!workspace->stopButton()->isEnabled());
    QVERIFY(!workspace->saveStopButton()->isEnabled());

    QSignalSpy started(workspace.get(), &TrainingWorkspace::runStarted);
    QSignalSpy epochs(workspace.get(), &TrainingWorkspace::epochFinished);
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QSignalSpy running(workspace.get(), &TrainingWorkspace::runningChanged);
    QTest::mouseClick(workspace->startButton(), Qt::LeftButton);
    QVERIFY(workspace->isRunning());
    // During the run: the form and Start are off, the run's controls on.
    QVERIFY(!workspace->settingsPanel()->isEnabled());
    QVERIFY(!workspace->startButton()->isEnabled());
    QVERIFY(!workspace->resumeButton()->isEnabled());
    QVERIFY(workspace->pauseButton()->isEnabled());
    QVERIFY(workspace->stopButton()->isEnabled());
    QVERIFY(workspace->saveStopButton()->isEnabled());
    QCOMPARE(running.count(), 1);

    QVERIFY(waitFinished(finished));
    QCOMPARE(finished.count(), 1);
    const auto finish = finished.constFirst().constFirst().value<TrainFinish>();
    QVERIFY2(finish.outcome == TrainOutcome::Completed, qPrintable(finish.message));
    QCOMPARE(started.count(), 1);
    QCOMPARE(epochs.count(), 1);
    QCOMPARE(running.count(), 2);
    QVERIFY(!workspace->isRunning());
    QCOMPARE(workspace->runFolder(), folder);

    // After: the form and Start again, the run's controls off.
    QVERIFY(workspace->settingsPanel()->isEnabled());
    QVERIFY(workspace->startButton()->isEnabled());
    QVERIFY(workspace->resumeButton()->isEnabled());
    QVERIFY(!workspace->pauseButton()->isEnabled());
    QVERIFY(!workspace->stopButton()->isEnabled());
    QVERIFY(!workspace->saveStopButton()->isEnabled());

    // The device used, and why, prominently.
    const TrainStart &start = workspace->lastStart();
    QCOMPARE(start.device, QStringLiteral("cpu"));
    QVERIFY(workspace->deviceLabel()->text().contains(QStringLiteral("cpu")));
    QVERIFY(!workspace->deviceNoteLabel()->text().isEmpty());
    QCOMPARE(start.valSamples, m_valCount);

    // Curves: a loss and a learning rate per step, accuracy and loss per epoch.
    const auto &ids = workspace->seriesIds();
    const qsizetype steps = start.batchesPerEpoch;
    QVERIFY(steps >= 1);
    QCOMPARE(qsizetype(workspace->lossChart()->points(ids.lossRaw).size()), steps);
    QCOMPARE(qsizetype(workspace->lossChart()->points(ids.lossSmooth).size()), steps);
    QCOMPARE(qsizetype(workspace->lrChart()->points(ids.lr).size()), steps);
    QCOMPARE(workspace->accuracyChart()->points(ids.trainAccuracy).size(), size_t(1));
    QCOMPARE(workspace->accuracyChart()->points(ids.valAccuracy).size(), size_t(1));
    QCOMPARE(workspace->epochLossChart()->points(ids.valLoss).size(), size_t(1));
    for (const QPointF &p : workspace->lossChart()->points(ids.lossRaw))
        QVERIFY(std::isfinite(p.y()) && p.y() > 0);
    workspace->lossChart()->refresh();
    QVERIFY(!workspace->lossChart()->shownPoints(ids.lossRaw).isEmpty());

    // The evaluation: a confusion matrix of every val image.
    EvaluationView *evaluation = workspace->evaluationView();
    workspace->tabs()->setCurrentWidget(evaluation);
    QVERIFY(evaluation->evaluation());
    ConfusionMatrixView *matrix = evaluation->matrixView();
    QCOMPARE(matrix->classCount(), 10);
    QCOMPARE(matrix->total(), qint64(m_valCount));
    QVERIFY(evaluation->summaryLabel()->text().contains(QStringLiteral("Accuracy")));

    // Clicking a cell lists exactly its images.
    QVERIFY(QTest::qWaitForWindowExposed(workspace.get()));
    QAbstractItemModelTester cellTester(evaluation->cellModel(),
                                        QAbstractItemModelTester::FailureReportingMode::QtTest);
    int clicked = 0;
    for (int t = 0; t < 10 && clicked < 3; ++t) {
        for (int p = 0; p < 10 && clicked < 3; ++p) {
            if (matrix->count(t, p) == 0 && !(t == 0 && p == 1))
                continue;
            const QRect rect = matrix->cellRect(t, p);
            QVERIFY(!rect.isEmpty());
            QSignalSpy cell(matrix, &ConfusionMatrixView::cellClicked);
            QTest::mouseClick(matrix, Qt::LeftButton, {}, rect.center());
            QCOMPARE(cell.count(), 1);
            QCOMPARE(matrix->selectedCell(), std::make_pair(t, p));
            QCOMPARE(evaluation->cellModel()->rowCount(), int(matrix->count(t, p)));
            for (const SamplePrediction &prediction : evaluation->cellModel()->predictions()) {
                QCOMPARE(prediction.label, t);
                QCOMPARE(prediction.predicted, p);
                QVERIFY(QFileInfo::exists(prediction.path));
            }
            ++clicked;
        }
    }
    QVERIFY(clicked >= 1);

    // Per class: one row per class, support adds up, sortable.
    QAbstractItemModelTester classTester(evaluation->classModel(),
                                         QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(evaluation->classModel()->rowCount(), 10);
    qint64 support = 0;
    for (int row = 0; row < 10; ++row)
        support += evaluation->classModel()
                       ->index(row, ClassMetricsModel::SupportColumn)
                       .data(Qt::EditRole)
                       .toLongLong();
    QCOMPARE(support, qint64(m_valCount));
    evaluation->classTable()->sortByColumn(ClassMetricsModel::F1Column, Qt::DescendingOrder);
    const QAbstractItemModel *sorted = evaluation->classTable()->model();
    for (int row = 1; row < 10; ++row)
        QVERIFY(sorted->index(row - 1, ClassMetricsModel::F1Column).data(Qt::EditRole).toDouble()
                >= sorted->index(row, ClassMetricsModel::F1Column).data(Qt::EditRole).toDouble());

    // Misclassified: every wrong image once, ranked as asked.
    QAbstractItemModelTester wrongTester(evaluation->misclassifiedModel(),
                                         QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(qint64(evaluation->misclassifiedModel()->rowCount()),
             matrix->total() - diagonal(matrix));
    evaluation->setMisclassifiedRanking(Evaluation::Ranking::MostConfident);
    const QList<SamplePrediction> &wrong = evaluation->misclassifiedModel()->predictions();
    for (int i = 1; i < wrong.size(); ++i)
        QVERIFY(wrong[i - 1].confidence >= wrong[i].confidence);
    if (!wrong.isEmpty()) {
        const QString caption
            = evaluation->misclassifiedModel()->index(0).data(Qt::DisplayRole).toString();
        QVERIFY2(caption.contains(QStringLiteral("→")) && caption.contains(QStringLiteral("p=")),
                 qPrintable(caption));
    }

    // Checkpoints in the run folder, offered for prediction.
    QVERIFY(QFileInfo::exists(folder + QStringLiteral("/last.pth")));
    QVERIFY(QFileInfo::exists(folder + QStringLiteral("/best.pth")));
    QCOMPARE(QFileInfo(workspace->bestCheckpoint()).fileName(), QStringLiteral("best.pth"));
    QCOMPARE(workspace->predictPanel()->checkpoint(), workspace->bestCheckpoint());
    // Export… opens the Export dialog on the best checkpoint.
    QVERIFY(workspace->exportButton()->isEnabled());
    ExportDialog *exportDialog = workspace->openExportDialog();
    QVERIFY(exportDialog);
    QCOMPARE(exportDialog->checkpointPath(), workspace->bestCheckpoint());
    exportDialog->close();
    // The run log says what happened.
    QVERIFY(workspace->logView()->toPlainText().contains(QStringLiteral("Device: cpu")));
}

/// "Processes: 2": this process is rank 0, the other an ifstudio-cli beside it; one set of
/// curves with the figures of both; pausing is off; the torchrun command is one click away.
void TestTrainingWorkspace::twoProcessesThroughTheUi()
{
    const auto workspace = openWorkspace();
    workspace->setCommandLineTool(ifs::test::cliPath());
    setQuickRun(*workspace, 1, QStringLiteral("two"));
    workspace->processesSpin()->setValue(2);
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QTest::mouseClick(workspace->startButton(), Qt::LeftButton);
    QVERIFY(workspace->isRunning());
    QVERIFY(!workspace->pauseButton()->isEnabled());
    QVERIFY(workspace->stopButton()->isEnabled());
    QVERIFY(waitFinished(finished));
    const auto finish = finished.constFirst().constFirst().value<TrainFinish>();
    QVERIFY2(finish.outcome == TrainOutcome::Completed, qPrintable(finish.message));
    const TrainStart &start = workspace->lastStart();
    QCOMPARE(start.worldSize, 2);
    QVERIFY2(start.distributed.startsWith(QStringLiteral("2 processes (Gloo over lo)")),
             qPrintable(start.distributed));
    // Each process takes half of the images: half the steps of one process.
    QCOMPARE(start.batchesPerEpoch,
             int((start.trainSamples + 1) / 2 / workspace->batchSizeSpin()->value()));
    const auto &ids = workspace->seriesIds();
    QCOMPARE(qsizetype(workspace->lossChart()->points(ids.lossRaw).size()),
             qsizetype(start.batchesPerEpoch));
    QCOMPARE(workspace->accuracyChart()->points(ids.valAccuracy).size(), size_t(1));
    QVERIFY(QFile::exists(workspace->runFolder() + QStringLiteral("/last.pth")));

    auto *copy = workspace->findChild<QToolButton *>(QStringLiteral("copyTorchrunButton"));
    QVERIFY(copy);
    copy->click();
    const QString command = QGuiApplication::clipboard()->text();
    QVERIFY2(command.contains(QStringLiteral("torchrun -r 2 -t 2 --standalone "
                                             "--nproc_per_node=2 --no_python ifstudio-cli train "
                                             "--data ")),
             qPrintable(command));
    QVERIFY2(command.contains(QStringLiteral("--nnodes=2 --rdzv_backend=c10d")),
             qPrintable(command));
}

/// Stop (without a save) in a 2-process run: both ranks agree at the next step and end on
/// their own; none has to be killed.
void TestTrainingWorkspace::twoProcessesStopTogether()
{
    const auto workspace = openWorkspace();
    workspace->setCommandLineTool(ifs::test::cliPath());
    setQuickRun(*workspace, 1000, QStringLiteral("two-stopped"));
    workspace->processesSpin()->setValue(2);
    QSignalSpy progress(workspace.get(), &TrainingWorkspace::progressChanged);
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QVERIFY(workspace->startRun());
    QVERIFY(progress.wait(kRunMs));
    QTest::mouseClick(workspace->stopButton(), Qt::LeftButton);
    QVERIFY(waitFinished(finished, 60000));
    const auto finish = finished.constFirst().constFirst().value<TrainFinish>();
    QVERIFY2(finish.outcome == TrainOutcome::Stopped, qPrintable(finish.message));
    QVERIFY2(!finish.message.contains(QStringLiteral("rank 1")), qPrintable(finish.message));
    QVERIFY(finish.epochsDone < 1000);
}

void TestTrainingWorkspace::evaluateCheckpointOnDemand()
{
    const QString run = trainedRun();
    QVERIFY(!run.isEmpty());
    const auto workspace = openWorkspace();
    EvaluationView *evaluation = workspace->evaluationView();
    QVERIFY(!evaluation->evaluation());
    QSignalSpy shown(evaluation, &EvaluationView::evaluationShown);
    QSignalSpy failed(evaluation, &EvaluationView::evaluationFailed);
    evaluation->evaluateCheckpoint(run + QStringLiteral("/best.pth"));
    QVERIFY(evaluation->isEvaluating());
    QVERIFY(!evaluation->evaluateButton()->isEnabled());
    QVERIFY(shown.wait(kRunMs));
    QVERIFY(failed.isEmpty());
    QVERIFY(!evaluation->isEvaluating());
    QVERIFY(evaluation->evaluateButton()->isEnabled());
    QCOMPARE(evaluation->matrixView()->total(), qint64(m_valCount));

    // Cancel: the view takes requests again. (Whether the cancelled run shows anything depends on
    // whether it had finished before the cancel reached it, so that is not asserted.)
    evaluation->evaluateCheckpoint(run + QStringLiteral("/last.pth"));
    evaluation->cancelEvaluation();
    QTRY_VERIFY_WITH_TIMEOUT(!evaluation->isEvaluating(), 30000);
    QVERIFY(evaluation->evaluateButton()->isEnabled());

    // A file that is no checkpoint: an error in the banner, not a crash.
    const QString junk = m_tmp.filePath(QStringLiteral("junk.pth"));
    QVERIFY(test::writeFile(junk, "not a checkpoint"));
    evaluation->evaluateCheckpoint(junk);
    QVERIFY(failed.wait(30000));
    QVERIFY(!failed.last().first().toString().isEmpty());
}

void TestTrainingWorkspace::predictWithTheRunsCheckpoint()
{
    const QString run = trainedRun();
    QVERIFY(!run.isEmpty());
    PredictPanel panel;
    panel.show();
    QCOMPARE(panel.checkpoint(), QString());
    QSignalSpy failedSpy(&panel, &PredictPanel::predictionFailed);
    panel.predict({m_root});
    QCOMPARE(failedSpy.count(), 1); // no checkpoint yet
    panel.setRunCheckpoints(run + QStringLiteral("/best.pth"), run + QStringLiteral("/last.pth"));
    QCOMPARE(panel.checkpoint(), run + QStringLiteral("/best.pth"));
    panel.setTopK(3);
    QSignalSpy shown(&panel, &PredictPanel::predictionsShown);
    const QString valFolder = m_root + QStringLiteral("/val/Sandal");
    panel.predict({valFolder});
    QVERIFY(shown.wait(kRunMs));
    QCOMPARE(panel.table()->rowCount(), kImagesPerClass);
    QCOMPARE(panel.table()->columnCount(), 1 + 3);
    double sum = 0;
    for (int column = 1; column <= 3; ++column) {
        QTableWidgetItem *item = panel.table()->item(0, column);
        QVERIFY(item);
        sum += item->data(Qt::UserRole + 1).toDouble();
        if (column > 1)
            QVERIFY(item->data(Qt::UserRole + 1).toDouble()
                    <= panel.table()->item(0, column - 1)->data(Qt::UserRole + 1).toDouble());
    }
    QVERIFY(sum > 0.0 && sum <= 1.0001);
    // A changed k predicts again.
    panel.setTopK(1);
    QVERIFY(shown.wait(kRunMs));
    QCOMPARE(panel.table()->columnCount(), 2);
}

void TestTrainingWorkspace::gradCamInThePredictPanel()
{
    const QString run = trainedRun();
    QVERIFY(!run.isEmpty());
    PredictPanel panel;
    panel.show();
    panel.setRunCheckpoints(run + QStringLiteral("/best.pth"), run + QStringLiteral("/last.pth"));
    QSignalSpy shown(&panel, &PredictPanel::predictionsShown);
    QSignalSpy cam(&panel, &PredictPanel::gradCamShown);
    panel.predict({m_root + QStringLiteral("/val/Sandal")});
    QVERIFY(shown.wait(kRunMs));
    panel.table()->setCurrentCell(1, 0);
    QVERIFY(panel.gradCamImage().isNull()); // off until asked for
    panel.gradCamToggle()->setChecked(true);
    QVERIFY(cam.wait(kRunMs));
    const QImage half = panel.gradCamImage();
    QVERIFY(!half.isNull());
    // Opacity 0 is the image the model saw; 100 the heatmap alone; no new computation.
    panel.gradCamOpacity()->setValue(0);
    const QImage plain = panel.gradCamImage();
    panel.gradCamOpacity()->setValue(100);
    const QImage heat = panel.gradCamImage();
    QCOMPARE(plain.size(), half.size());
    QVERIFY(plain != half && heat != half && plain != heat);
    QCOMPARE(cam.count(), 1);
    QTemporaryDir dir;
    const QString png = dir.filePath(QStringLiteral("cam.png"));
    QVERIFY(panel.saveGradCam(png));
    QCOMPARE(QImage(png).convertToFormat(QImage::Format_RGB32), heat);
    // Another image: its own heatmap.
    panel.table()->setCurrentCell(2, 0);
    QVERIFY(cam.wait(kRunMs));
    QCOMPARE(cam.count(), 2);
    panel.gradCamToggle()->setChecked(false);
    QVERIFY(panel.gradCamImage().isNull());
}

void TestTrainingWorkspace::mislabelViewRelabelsAndUndoes()
{
    const QString run = trainedRun();
    QVERIFY(!run.isEmpty());
    // A copy: the fixes move files.
    const QString root = m_tmp.filePath(QStringLiteral("mislabel-copy"));
    for (const QString &split : {QStringLiteral("train"), QStringLiteral("val")}) {
        QDirIterator it(m_root + u'/' + split, QDir::Files, QDirIterator::Subdirectories);
        while (it.hasNext()) {
            const QString from = it.next();
            const QString to = root + u'/' + QDir(m_root).relativeFilePath(from);
            QVERIFY(QDir().mkpath(QFileInfo(to).absolutePath()));
            QVERIFY(QFile::copy(from, to));
        }
    }
    MislabelView view;
    view.show();
    view.setDataset(root);
    view.setCheckpoint(run + QStringLiteral("/best.pth"));
    QSignalSpy scanned(&view, &MislabelView::scanned);
    QSignalSpy fixed(&view, &MislabelView::fixed);
    QSignalSpy failed(&view, &MislabelView::failed);
    view.scan();
    QVERIFY(scanned.wait(kRunMs));
    QCOMPARE(view.candidates().size(), qsizetype(20 * kImagesPerClass));
    QCOMPARE(view.table()->rowCount(), 20 * kImagesPerClass);
    for (int row = 1; row < view.table()->rowCount(); ++row)
        QVERIFY(view.candidates()[row - 1].selfConfidence <= view.candidates()[row].selfConfidence);

    // Relabel the most doubtful image into another class; the view scores the folders again.
    const MislabelCandidate first = view.candidates().first();
    const QString target = view.classes().value((first.label + 1) % 10);
    view.table()->selectRow(0);
    view.relabelSelected(target);
    QVERIFY(fixed.wait(kRunMs));
    QVERIFY(scanned.wait(kRunMs));
    QVERIFY(!QFileInfo::exists(first.path));
    const QString moved = QFileInfo(first.path).absolutePath() + QStringLiteral("/../") + target
        + u'/' + QFileInfo(first.path).fileName();
    QVERIFY(QFileInfo::exists(moved));
    QCOMPARE(view.candidates().size(), qsizetype(20 * kImagesPerClass));
    view.undoLast();
    QVERIFY(fixed.wait(kRunMs));
    QVERIFY(scanned.wait(kRunMs));
    QVERIFY(QFileInfo::exists(first.path));
    QVERIFY(!QFileInfo::exists(moved));

    // Quarantine takes it out of the dataset; undo brings it back.
    view.table()->selectRow(0);
    const QString doubtful = view.table()->item(0, 0)->data(Qt::UserRole).toString();
    view.quarantineSelected();
    QVERIFY(fixed.wait(kRunMs));
    QVERIFY(scanned.wait(kRunMs));
    QVERIFY(!QFileInfo::exists(doubtful));
    QCOMPARE(view.candidates().size(), qsizetype(20 * kImagesPerClass - 1));
    view.undoLast();
    QVERIFY(fixed.wait(kRunMs));
    QVERIFY(scanned.wait(kRunMs));
    QVERIFY(QFileInfo::exists(doubtful));
    QCOMPARE(failed.count(), 0);
}

void TestTrainingWorkspace::stopEndsTheRunQuickly()
{
    const auto workspace = openWorkspace();
    setQuickRun(*workspace, 1000, QStringLiteral("stopped"));
    QSignalSpy progress(workspace.get(), &TrainingWorkspace::progressChanged);
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QVERIFY(workspace->startRun());
    QVERIFY(progress.wait(kRunMs));
    // Held between batches first, so that where the run stands is known exactly: every step
    // before the hold has been delivered.
    auto *job = workspace->findChild<TrainingJob *>();
    QVERIFY(job);
    QSignalSpy held(job, &TrainingJob::held);
    QTest::mouseClick(workspace->pauseButton(), Qt::LeftButton);
    QVERIFY(held.wait(kRunMs));
    const auto &points = workspace->lossChart()->points(workspace->seriesIds().lossRaw);
    QVERIFY(!points.empty());
    const qint64 heldAt = qint64(points.back().x()); // the step the run holds after
    // Stopped while held: no further batch runs. (Stopping a running loop within one batch is
    // tst_training's stopTakesEffectWithinOneBatch; here the GUI thread could be descheduled
    // between a resume and the stop on a loaded machine, and the count would depend on it.)
    QTest::mouseClick(workspace->stopButton(), Qt::LeftButton);
    // Stopping: nothing more to press until it has stopped.
    QVERIFY(!workspace->stopButton()->isEnabled());
    QVERIFY(!workspace->saveStopButton()->isEnabled());
    QVERIFY(!workspace->pauseButton()->isEnabled());
    QVERIFY(!workspace->startButton()->isEnabled());
    QVERIFY(waitFinished(finished, 20000));
    const auto finish = finished.constFirst().constFirst().value<TrainFinish>();
    QVERIFY2(finish.outcome == TrainOutcome::Stopped, qPrintable(finish.message));
    QVERIFY2(
        finish.steps == heldAt,
        qPrintable(QStringLiteral("held at step %1, stopped at %2").arg(heldAt).arg(finish.steps)));
    QVERIFY(workspace->startButton()->isEnabled());
    QVERIFY(workspace->settingsPanel()->isEnabled());
}

void TestTrainingWorkspace::pauseHoldsTheRun()
{
    const auto workspace = openWorkspace();
    setQuickRun(*workspace, 1000, QStringLiteral("paused"));
    QSignalSpy progress(workspace.get(), &TrainingWorkspace::progressChanged);
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QVERIFY(workspace->startRun());
    QVERIFY(progress.wait(kRunMs));
    auto *job = workspace->findChild<TrainingJob *>();
    QVERIFY(job);
    QSignalSpy holding(job, &TrainingJob::held);
    QTest::mouseClick(workspace->pauseButton(), Qt::LeftButton);
    QVERIFY(workspace->isPaused());
    QCOMPARE(workspace->pauseButton()->text(), QStringLiteral("Resume"));
    // The batch under way may still come in; then the loop holds, every step before delivered.
    QVERIFY(holding.wait(kRunMs));
    const qsizetype held = workspace->lossChart()->points(workspace->seriesIds().lossRaw).size();
    // Held: nothing is on its way.
    QCoreApplication::sendPostedEvents();
    QCoreApplication::processEvents();
    QCOMPARE(qsizetype(workspace->lossChart()->points(workspace->seriesIds().lossRaw).size()),
             held);
    QTest::mouseClick(workspace->pauseButton(), Qt::LeftButton);
    QVERIFY(!workspace->isPaused());
    QCOMPARE(workspace->pauseButton()->text(), QStringLiteral("Pause"));
    QTRY_VERIFY_WITH_TIMEOUT(
        qsizetype(workspace->lossChart()->points(workspace->seriesIds().lossRaw).size()) > held,
        kRunMs);
    // Stop also ends a pause.
    QTest::mouseClick(workspace->pauseButton(), Qt::LeftButton);
    QVERIFY(workspace->isPaused());
    workspace->stopRun();
    QVERIFY(waitFinished(finished, 20000));
    QCOMPARE(finished.constFirst().constFirst().value<TrainFinish>().outcome,
             TrainOutcome::Stopped);
}

void TestTrainingWorkspace::exactResumeContinuesTheCurves()
{
    const auto workspace = openWorkspace();
    const QString folder = setQuickRun(*workspace, 2, QStringLiteral("resumed"));
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QVERIFY(workspace->startRun());
    QVERIFY(waitFinished(finished));
    QCOMPARE(finished.constFirst().constFirst().value<TrainFinish>().outcome,
             TrainOutcome::Completed);
    const auto &ids = workspace->seriesIds();
    const size_t steps = workspace->lossChart()->points(ids.lossRaw).size();
    QCOMPARE(workspace->accuracyChart()->points(ids.valAccuracy).size(), size_t(2));

    // The resume dialog tells what the checkpoint holds.
    ResumeDialog dialog;
    dialog.setCheckpoint(folder + QStringLiteral("/last.pth"));
    QVERIFY(dialog.summary().has_value());
    QCOMPARE(dialog.summary()->arch, QStringLiteral("small_cnn"));
    QCOMPARE(dialog.summary()->epoch, 2);
    QVERIFY(dialog.summaryText()->toPlainText().contains(QStringLiteral("small_cnn")));
    QVERIFY(dialog.exactButton()->isEnabled());
    QVERIFY(!dialog.weightsOnly());
    QVERIFY(dialog.epochs() > 2);

    // Exactly: the same folder, epoch 3 of 3, the curves going on from the first two epochs.
    finished.clear();
    QSignalSpy started(workspace.get(), &TrainingWorkspace::runStarted);
    // The curves as the run starts: read in the signal, since later events (this short epoch's
    // end) may come in the same delivery, before the spy's wait returns.
    size_t pointsAtStart = 0;
    connect(workspace.get(), &TrainingWorkspace::runStarted, this,
            [&] { pointsAtStart = workspace->accuracyChart()->points(ids.valAccuracy).size(); });
    QVERIFY(workspace->resumeFrom(folder + QStringLiteral("/last.pth"), false, 3));
    QVERIFY(started.count() > 0 || started.wait(kRunMs));
    const auto start = started.constFirst().constFirst().value<TrainStart>();
    QCOMPARE(start.startEpoch, 3);
    QCOMPARE(start.history.epochs.size(), 2);
    QCOMPARE(pointsAtStart, size_t(2));
    QVERIFY(waitFinished(finished));
    QCOMPARE(finished.constFirst().constFirst().value<TrainFinish>().outcome,
             TrainOutcome::Completed);
    QCOMPARE(workspace->runFolder(), folder);
    QCOMPARE(workspace->accuracyChart()->points(ids.valAccuracy).size(), size_t(3));
    const auto &loss = workspace->lossChart()->points(ids.lossRaw);
    QCOMPARE(loss.size(), steps / 2 * 3);
    for (size_t i = 1; i < loss.size(); ++i)
        QVERIFY(loss[i].x() > loss[i - 1].x()); // steps continue, no restart at 1
}

void TestTrainingWorkspace::overlayEarlierRun()
{
    const QString run = trainedRun();
    QVERIFY(!run.isEmpty());
    const auto workspace = openWorkspace();
    const int before = int(workspace->accuracyChart()->seriesIds().size());
    const Status status = workspace->overlayRun(run);
    QVERIFY2(status.ok(), qPrintable(status.errorMessage()));
    const QList<int> ids = workspace->accuracyChart()->seriesIds();
    QCOMPARE(ids.size(), before + 2);
    QVERIFY(workspace->accuracyChart()->seriesName(ids.last()).contains(u"earlier"));
    QCOMPARE(workspace->accuracyChart()->points(ids.last()).size(), size_t(1));
    QVERIFY(workspace->lossChart()->seriesIds().size() > 2);
    workspace->clearOverlays();
    QCOMPARE(int(workspace->accuracyChart()->seriesIds().size()), before);
    QCOMPARE(workspace->lossChart()->seriesIds().size(), 2);
    // Not a run folder: said so.
    QVERIFY(!workspace->overlayRun(m_tmp.filePath(QStringLiteral("nothing-here"))).ok());
}

void TestTrainingWorkspace::inputSizeAdviceInTheBanner()
{
    // resnet18 on these 28×28 images: its last stage would see 1×1 maps, and the banner says
    // how to upscale (one step is enough to start the run and hear it).
    const auto workspace = openWorkspace();
    setQuickRun(*workspace, 1, QStringLiteral("advice"));
    TrainConfig config = workspace->config();
    config.arch = QStringLiteral("resnet18");
    config.outDir = m_tmp.filePath(QStringLiteral("runs/advice"));
    config.maxSteps = 1;
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QVERIFY(workspace->startRun(config));
    QVERIFY(waitFinished(finished));
    QVERIFY(workspace->banner()->isVisible());
    QCOMPARE(workspace->banner()->level(), WarningBanner::Level::Info);
    QVERIFY2(workspace->banner()->text().contains(QStringLiteral("transforms.Resize(56)")),
             qPrintable(workspace->banner()->text()));
}

/// The fine-tuning rows appear when the run starts from weights, the unfreeze epoch for
/// head-then-full and the backbone's rate when the backbone trains; config() and setConfig()
/// carry them, and a run from random initialisation trains every layer.
void TestTrainingWorkspace::fineTuningChoices()
{
    const auto workspace = openWorkspace();
    auto *start = workspace->findChild<QComboBox *>(QStringLiteral("startFromCombo"));
    auto *mode = workspace->findChild<QComboBox *>(QStringLiteral("finetuneCombo"));
    auto *unfreeze = workspace->findChild<QSpinBox *>(QStringLiteral("unfreezeEpochSpin"));
    auto *factor = workspace->findChild<QDoubleSpinBox *>(QStringLiteral("backboneLrFactorSpin"));
    QVERIFY(start && mode && unfreeze && factor);
    workspace->modelCombo()->setCurrentIndex(
        workspace->modelCombo()->findData(QStringLiteral("resnet18")));
    start->setCurrentIndex(start->findData(QString()));
    QVERIFY(!mode->isVisible() && !unfreeze->isVisible() && !factor->isVisible());
    mode->setCurrentIndex(mode->findData(int(FinetuneMode::Head)));
    QCOMPARE(workspace->config().finetune, FinetuneMode::Full); // nothing to fine-tune from

    start->setCurrentIndex(start->findData(QStringLiteral("IMAGENET1K_V1")));
    QVERIFY(mode->isVisible());
    QVERIFY(!unfreeze->isVisible()); // head only: no unfreeze, no backbone rate
    QVERIFY(!factor->isVisible());
    QCOMPARE(workspace->config().finetune, FinetuneMode::Head);
    mode->setCurrentIndex(mode->findData(int(FinetuneMode::HeadThenFull)));
    QVERIFY(unfreeze->isVisible() && factor->isVisible());
    unfreeze->setValue(3);
    factor->setValue(0.1);
    TrainConfig config = workspace->config();
    QCOMPARE(config.finetune, FinetuneMode::HeadThenFull);
    QCOMPARE(config.unfreezeEpoch, 3);
    QCOMPARE(config.backboneLrFactor, 0.1);

    config.finetune = FinetuneMode::Head;
    config.unfreezeEpoch = 1;
    workspace->setConfig(config);
    QCOMPARE(FinetuneMode(mode->currentData().toInt()), FinetuneMode::Head);
    QVERIFY(!unfreeze->isVisible());
    QCOMPARE(workspace->config().unfreezeEpoch, 1);
}

/// "Start from": ImageNet weights where torchvision has them (V2 only where it exists), a file
/// row only for a file; offline, the run fails with the message that says which file to put
/// where, in the banner.
void TestTrainingWorkspace::startFromImageNetWeights()
{
    const auto workspace = openWorkspace();
    setQuickRun(*workspace, 1, QStringLiteral("imagenet"));
    auto *start = workspace->findChild<QComboBox *>(QStringLiteral("startFromCombo"));
    auto *file = workspace->findChild<QLineEdit *>(QStringLiteral("weightsEdit"));
    QVERIFY(start && file);
    auto *items = qobject_cast<QStandardItemModel *>(start->model());
    const int v1 = start->findData(QStringLiteral("IMAGENET1K_V1"));
    const int v2 = start->findData(QStringLiteral("IMAGENET1K_V2"));
    QVERIFY(!items->item(v1)->isEnabled()); // small_cnn: none
    workspace->modelCombo()->setCurrentIndex(
        workspace->modelCombo()->findData(QStringLiteral("resnet18")));
    QVERIFY(items->item(v1)->isEnabled());
    QVERIFY(!items->item(v2)->isEnabled());
    start->setCurrentIndex(v1);
    QVERIFY(!file->isVisible());
    TrainConfig config = workspace->config();
    QCOMPARE(config.pretrained, QStringLiteral("IMAGENET1K_V1"));
    QVERIFY(config.weightsPath.isEmpty());
    start->setCurrentIndex(start->findData(QStringLiteral("file")));
    QVERIFY(file->isVisible());
    config.arch = QStringLiteral("resnet50");
    config.pretrained = QStringLiteral("DEFAULT");
    workspace->setConfig(config);
    QCOMPARE(start->currentData().toString(), QStringLiteral("IMAGENET1K_V2"));
    QVERIFY(!file->isVisible());

    // Offline (a port nothing listens on) with an empty cache.
    qputenv("TORCH_HOME", QFile::encodeName(m_tmp.filePath(QStringLiteral("empty-torch"))));
    qputenv("IFS_TEST_PRETRAINED_URL", "http://127.0.0.1:9/");
    auto restore = qScopeGuard([] {
        qunsetenv("TORCH_HOME");
        qunsetenv("IFS_TEST_PRETRAINED_URL");
    });
    config.arch = QStringLiteral("resnet18");
    config.pretrained = QStringLiteral("IMAGENET1K_V1");
    config.outDir = m_tmp.filePath(QStringLiteral("runs/imagenet"));
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QVERIFY(workspace->startRun(config));
    QVERIFY(waitFinished(finished));
    QCOMPARE(finished.constFirst().constFirst().value<TrainFinish>().outcome, TrainOutcome::Failed);
    QCOMPARE(workspace->banner()->level(), WarningBanner::Level::Error);
    const QString text = workspace->banner()->text();
    QVERIFY2(text.contains(QStringLiteral("http://127.0.0.1:9/resnet18-f37072fd.pth"))
                 && text.contains(QStringLiteral("Download that file and put it at "))
                 && text.contains(QStringLiteral("resnet18-f37072fd.pth (torch.hub's cache")),
             qPrintable(text));
    QVERIFY(workspace->startButton()->isEnabled());
}

void TestTrainingWorkspace::invalidSettingsDoNotStart()
{
    const auto workspace = openWorkspace();
    setQuickRun(*workspace, 1, QStringLiteral("invalid"));
    TrainConfig config = workspace->config();
    config.outDir = m_tmp.filePath(QStringLiteral("runs/invalid"));
    config.batchSize = 0;
    QVERIFY(!workspace->startRun(config));
    QVERIFY(!workspace->isRunning());
    QVERIFY(workspace->banner()->isVisible());
    QVERIFY(workspace->startButton()->isEnabled());

    // Transforms that do not parse: refused before or failed by the run, said in the banner,
    // and the workspace ready again.
    workspace->banner()->dismiss();
    m_settings->setTransformPipelines(
        m_root, {QStringLiteral("transforms.Compose([transforms.CentreCrop(8)])"), QString()});
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    if (workspace->startRun()) {
        QVERIFY(waitFinished(finished));
        QCOMPARE(finished.constFirst().constFirst().value<TrainFinish>().outcome,
                 TrainOutcome::Failed);
    }
    QVERIFY(!workspace->isRunning());
    QVERIFY(workspace->banner()->isVisible());
    QCOMPARE(workspace->banner()->level(), WarningBanner::Level::Error);
    QVERIFY2(workspace->banner()->text().contains(QStringLiteral("CentreCrop")),
             qPrintable(workspace->banner()->text()));
    QVERIFY(workspace->startButton()->isEnabled());
    QVERIFY(workspace->settingsPanel()->isEnabled());
    m_settings->removeTransformPipelines(m_root);
}

/// Another run holds the run folder (a CLI run, another window): the run fails at once with a
/// banner that names the holder, writes nothing, and the form is ready again.
void TestTrainingWorkspace::runFolderInUseIsRefused()
{
    const auto workspace = openWorkspace();
    const QString folder = setQuickRun(*workspace, 1, QStringLiteral("in-use"));
    QVERIFY(QDir().mkpath(folder));
    RunFolderLock other;
    QVERIFY(other.acquire(folder));
    QSignalSpy finished(workspace.get(), &TrainingWorkspace::runFinished);
    QVERIFY(workspace->startRun());
    QVERIFY(waitFinished(finished));
    QCOMPARE(finished.constFirst().constFirst().value<TrainFinish>().outcome, TrainOutcome::Failed);
    QVERIFY(!workspace->isRunning());
    QVERIFY(workspace->banner()->isVisible());
    QCOMPARE(workspace->banner()->level(), WarningBanner::Level::Error);
    const QString text = workspace->banner()->text();
    QVERIFY2(
        text.contains(QStringLiteral("in use by another training run"))
            && text.contains(QStringLiteral("process %1").arg(QCoreApplication::applicationPid())),
        qPrintable(text));
    QCOMPARE(QDir(folder).entryList(QDir::Files), QStringList{}); // nothing written
    QVERIFY(workspace->startButton()->isEnabled());
    QVERIFY(workspace->settingsPanel()->isEnabled());
}

void TestTrainingWorkspace::closingTheWindowAsksAndStops()
{
    MainWindow window;
    window.show();
    QSignalSpy scanned(window.datasets(), &DatasetsWorkspace::scanFinished);
    window.openDataset(m_root);
    QVERIFY(scanned.count() > 0 || scanned.wait(30000));
    TrainingWorkspace *training = window.training();
    QVERIFY(training->hasDataset());
    window.showWorkspace(3);
    setQuickRun(*training, 1000, QStringLiteral("closed"));
    QSignalSpy progress(training, &TrainingWorkspace::progressChanged);
    QSignalSpy finished(training, &TrainingWorkspace::runFinished);
    QVERIFY(training->startRun());
    QVERIFY(progress.wait(kRunMs));

    // Cancel keeps the window and the run. The box is answered when it shows, however long the
    // machine takes to get there.
    const auto answerWhenAsked = [](std::function<void(QMessageBox *)> answer) {
        auto *poll = new QTimer;
        QObject::connect(poll, &QTimer::timeout, poll, [poll, answer] {
            if (auto *box = qobject_cast<QMessageBox *>(QApplication::activeModalWidget())) {
                poll->stop();
                poll->deleteLater();
                answer(box);
            }
        });
        poll->start(20);
    };
    answerWhenAsked([](QMessageBox *box) { box->reject(); });
    window.close();
    QVERIFY(window.isVisible());
    QVERIFY(training->isRunning());

    // Stop: the window closes once the run has stopped.
    QString asked;
    answerWhenAsked([&asked](QMessageBox *box) {
        asked = box->text();
        for (QAbstractButton *button : box->buttons())
            if (button->text() == QStringLiteral("Stop"))
                button->click();
    });
    window.close();
    QVERIFY(asked.contains(QStringLiteral("training run is in progress")));
    QVERIFY(waitFinished(finished, 20000));
    QTRY_VERIFY_WITH_TIMEOUT(!window.isVisible(), 5000);
    QCOMPARE(finished.constFirst().constFirst().value<TrainFinish>().outcome,
             TrainOutcome::Stopped);
}

/// "Find…" next to the learning rate runs the LR finder on the form's settings in a dialog (a
/// BackgroundJob with progress); a suggestion's button puts its rate into the form.
void TestTrainingWorkspace::lrFinderSuggestionSetsTheRate()
{
    auto workspace = openWorkspace();
    setQuickRun(*workspace, 1, QStringLiteral("lrfind"));
    QVERIFY(workspace->findLrButton()->isEnabled());
    workspace->findLrButton()->click();
    auto *dialog = workspace->findChild<LrFinderDialog *>();
    QVERIFY(dialog);
    QVERIFY(dialog->isVisible());
    QVERIFY(dialog->isRunning()); // started when shown
    QSignalSpy ended(dialog, &LrFinderDialog::runEnded);
    QVERIFY(ended.wait(kRunMs));
    const LrFindResult &result = dialog->result();
    QVERIFY(!result.lrs.isEmpty());
    QVERIFY(!result.suggestions.isEmpty());
    QVERIFY(dialog->plot()->isVisible());
    QVERIFY(dialog->plot()->curve().size() >= result.lrs.size() - 5);
    const LrSuggestion *steep = result.suggestion(QStringLiteral("steep"));
    QVERIFY(steep);
    auto *button = dialog->findChild<QPushButton *>(QStringLiteral("lrSuggestion_steep"));
    QVERIFY(button);
    QPointer<LrFinderDialog> alive(dialog);
    button->click();
    const double chosen = QString::number(steep->lr, 'e', 2).toDouble();
    QCOMPARE(workspace->lrEdit()->text().toDouble(), chosen);
    QTRY_VERIFY(!alive); // closed and deleted
    // The run itself starts from the same model as before: nothing was written.
    QVERIFY(!QFileInfo::exists(m_tmp.filePath(QStringLiteral("runs/lrfind"))));
}

/// A click on the plot picks the rate under the cursor (log x axis); Cancel stops a ramp.
void TestTrainingWorkspace::lrFinderPlotClickAndCancel()
{
    TrainConfig config;
    config.dataRoot = m_root;
    config.arch = QStringLiteral("small_cnn");
    config.batchSize = 16;
    config.device = QStringLiteral("cpu");
    LrFinderDialog dialog(config);
    LrFindOptions options;
    options.numIt = 30;
    options.endLr = 100.0;
    dialog.start(options);
    dialog.resize(800, 600);
    dialog.show();
    QVERIFY(QTest::qWaitForWindowExposed(&dialog));
    QSignalSpy ended(&dialog, &LrFinderDialog::runEnded);
    QVERIFY(ended.wait(kRunMs));
    QVERIFY(dialog.plot()->isVisible());
    const QList<QPointF> curve = dialog.plot()->curve();
    QVERIFY(curve.size() >= 2);
    QChartView *view = dialog.plot()->chartView();
    const QRectF area = view->chart()->plotArea();
    const QPoint centre = view->mapFromScene(view->chart()->mapToScene(area.center()));
    QSignalSpy chosen(&dialog, &LrFinderDialog::rateChosen);
    QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, centre);
    QCOMPARE(chosen.count(), 1);
    // The middle of a log axis is the geometric mean of its ends.
    const double middle = (std::log10(curve.first().x()) + std::log10(curve.last().x())) / 2.0;
    QVERIFY2(std::abs(std::log10(chosen.at(0).at(0).toDouble()) - middle) < 0.1,
             qPrintable(QString::number(chosen.at(0).at(0).toDouble())));

    LrFinderDialog cancelled(config);
    QSignalSpy cancelEnded(&cancelled, &LrFinderDialog::runEnded);
    cancelled.start(options);
    QVERIFY(cancelled.isRunning());
    cancelled.findChild<QPushButton *>(QStringLiteral("lrFinderCancel"))->click();
    QVERIFY(cancelEnded.wait(kRunMs));
    QVERIFY(!cancelled.isRunning());
    QVERIFY(cancelled.result().lrs.isEmpty());
}

void TestTrainingWorkspace::batchViewShowsTheFirstTrainingBatch()
{
    // The batch a run with these settings starts with: its batch size, seed and pipeline (a
    // policy included), labels from the dataset's classes; Reseed shows the next seed's.
    m_settings->setTransformPipelines(
        m_root,
        {QStringLiteral("transforms.Compose([transforms.TrivialAugmentWide(), "
                        "transforms.ToTensor()])"),
         QStringLiteral("transforms.Compose([transforms.ToTensor()])")});
    const auto workspace = openWorkspace();
    workspace->batchSizeSpin()->setValue(16);
    workspace->findChild<QSpinBox *>(QStringLiteral("seedSpin"))->setValue(42);
    workspace->findChild<QPushButton *>(QStringLiteral("trainingShowBatchButton"))->click();
    BatchView *view = workspace->batchView();
    QVERIFY(view);
    QSignalSpy shown(view, &BatchView::batchShown);
    QVERIFY(shown.count() > 0 || shown.wait(60000));
    QCOMPARE(view->shownLabels().size(), 16);
    const QStringList classes = m_scan.index(QStringLiteral("train"))->classes;
    for (const QString &label : view->shownLabels())
        QVERIFY2(classes.contains(label), qPrintable(label));
    QVERIFY2(view->status().startsWith(QStringLiteral("16 images, tensor [16, "))
                 && view->status().contains(QStringLiteral(", 28, 28], seed 42")),
             qPrintable(view->status()));
    shown.clear();
    view->findChild<QPushButton *>(QStringLiteral("reseedButton"))->click();
    QVERIFY(shown.count() > 0 || shown.wait(60000));
    QVERIFY2(view->status().contains(QStringLiteral("seed 43")), qPrintable(view->status()));
}

QTEST_MAIN(TestTrainingWorkspace)
#include "tst_trainingworkspace.moc"
