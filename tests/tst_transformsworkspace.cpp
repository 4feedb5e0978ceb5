// The Transforms workspace as a user drives it (offscreen), on real images written by the oracle:
// defaults for the dataset, code and list in sync, errors in place, previews that are exactly
// what torchvision gives for the same seed, findings with fixes, Python files out and in, the
// dataset's own statistics, and pipelines that persist per dataset.
#include "base/settings.h"
#include "common/batchview.h"
#include "dataset/datasetlayout.h"
#include "datasets/datasetsworkspace.h"
#include "datasets/thumbnailmodel.h"
#include "datasets/thumbnailview.h"
#include "mainwindow.h"
#include "testutil.h"
#include "transforms/advicepanel.h"
#include "transforms/pipelineeditor.h"
#include "transforms/stepform.h"
#include "transforms/transformjobs.h"
#include "transforms/transformpreview.h"
#include "transforms/transforms.h"
#include "transforms/transformsworkspace.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStackedWidget>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>

#include <memory>

using namespace ifs;
using namespace ifs::test;

namespace {

constexpr int kWaitMs = 30000;

QStringList stepNames(const TransformPipeline &pipeline)
{
    QStringList names;
    for (const TransformStep &step : pipeline.steps)
        names.append(step.name);
    return names;
}

} // namespace

class TestTransformsWorkspace : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void init();
    void emptyStateOffersToOpen();
    void defaultsAndFirstPreview();
    void previewIsWhatTorchvisionGives();
    void sameSeedSameImages();
    void codeEditsUpdateTheList();
    void badCodeShowsErrorAndKeepsPipeline();
    void listEditsRewriteTheCode();
    void parameterForm();
    void engineErrorsShowInPlace();
    void hugeOutputIsRefusedInPlace();
    void findingsWithFixes();
    void exportImportRoundTrip();
    void ambiguousImportSaysSo();
    void meanAndStdFromDataset();
    void pipelinesPersistPerDataset();
    void mainWindowFollowsTheDataset();
    void policiesAndLambdaInTheStrip();
    void batchViewShowsOneTrainingBatch();

private:
    /// A workspace on the test dataset, its pipelines loaded and its first preview shown.
    std::unique_ptr<TransformsWorkspace> openWorkspace();
    /// Waits for the next preview (spy made before the action that asks for it).
    bool waitPreview(QSignalSpy &spy);

    QTemporaryDir m_tmp;
    QString m_root;
    DatasetScan m_scan;
    std::unique_ptr<Settings> m_settings;
};

void TestTransformsWorkspace::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName(QStringLiteral("ImageFolderStudioTests"));
    QCoreApplication::setApplicationName(QStringLiteral("tst_transformsworkspace"));
    QVERIFY(m_tmp.isValid());

    // Photo-like images from the oracle (PIL): a 500 × 375 JPEG, a 251 × 333 PNG, a gray PNG.
    const QString images = m_tmp.filePath(QStringLiteral("images"));
    QVERIFY(QDir().mkpath(images));
    const ProcessResult made
        = runOracle(QStringLiteral("transforms_oracle.py"), {QStringLiteral("images"), images});
    QVERIFY2(made.exitCode == 0, made.err.constData());
    m_root = m_tmp.filePath(QStringLiteral("pets"));
    const QList<QPair<QString, QString>> files{
        {QStringLiteral("photo.jpg"), QStringLiteral("cat/001.jpg")},
        {QStringLiteral("portrait.png"), QStringLiteral("cat/002.png")},
        {QStringLiteral("photo.jpg"), QStringLiteral("dog/001.jpg")},
        {QStringLiteral("gray.png"), QStringLiteral("dog/002.png")},
        {QStringLiteral("photo.jpg"), QStringLiteral("dog/003.jpg")},
    };
    for (const auto &[from, to] : files) {
        QVERIFY(QDir().mkpath(QFileInfo(m_root + u'/' + to).absolutePath()));
        QVERIFY(QFile::copy(images + u'/' + from, m_root + u'/' + to));
    }
    const Result<DatasetScan> scan = scanDataset(detectLayout(m_root));
    QVERIFY2(scan.ok(), qPrintable(scan.errorMessage()));
    m_scan = scan.value();
}

void TestTransformsWorkspace::init()
{
    QSettings().clear(); // pipelines, seed and layout from earlier cases
    m_settings = std::make_unique<Settings>();
}

bool TestTransformsWorkspace::waitPreview(QSignalSpy &spy)
{
    return spy.count() > 0 || spy.wait(kWaitMs);
}

std::unique_ptr<TransformsWorkspace> TestTransformsWorkspace::openWorkspace()
{
    auto workspace = std::make_unique<TransformsWorkspace>(m_settings.get());
    workspace->resize(1400, 900);
    workspace->show();
    QSignalSpy ready(workspace.get(), &TransformsWorkspace::pipelinesReady);
    QSignalSpy preview(workspace.get(), &TransformsWorkspace::previewUpdated);
    workspace->setDataset(m_root, m_scan);
    if (!(ready.count() > 0 || ready.wait(kWaitMs)) || !waitPreview(preview))
        return nullptr;
    return workspace;
}

void TestTransformsWorkspace::emptyStateOffersToOpen()
{
    TransformsWorkspace workspace(m_settings.get());
    workspace.show();
    QVERIFY(workspace.findChild<QWidget *>(QStringLiteral("transformsEmptyPage"))->isVisible());
    QSignalSpy open(&workspace, &TransformsWorkspace::openFolderRequested);
    QSignalSpy sample(&workspace, &TransformsWorkspace::openSampleRequested);
    workspace.findChild<QPushButton *>(QStringLiteral("transformsOpenButton"))->click();
    workspace.findChild<QPushButton *>(QStringLiteral("transformsSampleButton"))->click();
    QCOMPARE(open.count(), 1);
    QCOMPARE(sample.count(), 1);
    QVERIFY(!workspace.hasDataset());
}

void TestTransformsWorkspace::defaultsAndFirstPreview()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    QVERIFY(!workspace->findChild<QWidget *>(QStringLiteral("transformsEmptyPage"))->isVisible());
    // Photos: torchvision's ImageNet recipe.
    QCOMPARE(
        stepNames(workspace->trainEditor()->pipeline()),
        (QStringList{QStringLiteral("RandomResizedCrop"), QStringLiteral("RandomHorizontalFlip"),
                     QStringLiteral("ToTensor"), QStringLiteral("Normalize")}));
    QCOMPARE(stepNames(workspace->valEditor()->pipeline()),
             (QStringList{QStringLiteral("Resize"), QStringLiteral("CenterCrop"),
                          QStringLiteral("ToTensor"), QStringLiteral("Normalize")}));
    QVERIFY(workspace->trainEditor()->code().startsWith(QStringLiteral("transforms.Compose([\n")));
    QCOMPARE(workspace->trainEditor()->model()->rowCount(), 4);
    QVERIFY(workspace->traits().sampled > 0);

    const PreviewResult &preview = workspace->lastPreview();
    QVERIFY(preview.trainError.isEmpty());
    QVERIFY(preview.valError.isEmpty());
    QCOMPARE(preview.original.size(), QSize(500, 375)); // cat/001.jpg, the first image
    QCOMPARE(preview.train.size(), workspace->draws());
    QCOMPARE(workspace->draws(), 8);
    for (const PreviewOutput &out : preview.train) {
        QVERIFY2(out.error.isEmpty(), qPrintable(out.error));
        QCOMPARE(out.image.size(), QSize(224, 224));
        QVERIFY(out.isTensor && out.denormalised);
        QCOMPARE(out.description, QStringLiteral("tensor float32 [3, 224, 224]"));
        QCOMPARE(out.stats.mean.size(), size_t(3));
        QCOMPARE(out.regions.size(), 1); // RandomResizedCrop's box on the original
        QVERIFY(QRectF(0, 0, 500, 375).contains(out.regions.constFirst()));
    }
    QCOMPARE(preview.val.image.size(), QSize(224, 224));
    // The strip: the input, then one image per step.
    QCOMPARE(preview.trainSteps.size(), 5);
    QCOMPARE(preview.trainSteps[1].name, QStringLiteral("RandomResizedCrop"));
    QVERIFY(preview.trainSteps[1].summary.contains(QStringLiteral("i=")));
    QVERIFY(preview.trainSteps[4].denormalised);
    QCOMPARE(preview.valSteps.size(), 5);

    // On screen: 8 tiles, the original with its boxes, statistics of the output.
    TransformPreview *view = workspace->preview();
    QCOMPARE(view->trainTiles().size(), 8);
    QVERIFY(!view->trainTiles().constFirst()->image().isNull());
    QVERIFY(view->trainTiles().constFirst()->isSelected());
    QVERIFY(view->trainStatsLabel()->text().contains(QStringLiteral("[3, 224, 224]")));
    QVERIFY(view->trainStatsLabel()->text().contains(QStringLiteral("mean")));
    QVERIFY(view->valStatsLabel()->text().contains(QStringLiteral("std")));
    QCOMPARE(view->stepTiles().size(), 5);

    // Clicking a draw traces its steps.
    QSignalSpy next(workspace.get(), &TransformsWorkspace::previewUpdated);
    QTest::mouseClick(view->trainTiles()[3], Qt::LeftButton);
    QVERIFY(waitPreview(next));
    QCOMPARE(workspace->lastPreview().traceDraw, 3);
    QVERIFY(view->trainTiles()[3]->isSelected());
    QCOMPARE(workspace->lastPreview().trainSteps[1].summary,
             workspace->lastPreview().train[3].summaries[0].section(QStringLiteral(": "), 1));
}

void TestTransformsWorkspace::previewIsWhatTorchvisionGives()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    QSignalSpy spy(workspace.get(), &TransformsWorkspace::previewUpdated);
    workspace->setSeed(1234);
    QVERIFY(waitPreview(spy));
    const PreviewResult preview = workspace->lastPreview();
    QCOMPARE(preview.seed, quint64(1234));

    // The oracle runs the same pipeline with torch.manual_seed(seed + k) for draw k.
    const QString source = toTorchvisionSource(workspace->trainEditor()->pipeline());
    QJsonArray cases;
    for (int k = 0; k < preview.train.size(); ++k)
        cases.append(QJsonObject{{QStringLiteral("image"), preview.path},
                                 {QStringLiteral("pipeline"), source},
                                 {QStringLiteral("seed"), 1234 + k}});
    const QString out = m_tmp.filePath(QStringLiteral("oracle-out"));
    QVERIFY(QDir().mkpath(out));
    const QString requestPath = m_tmp.filePath(QStringLiteral("request.json"));
    QVERIFY(writeFile(requestPath,
                      QJsonDocument(QJsonObject{{QStringLiteral("cases"), cases}}).toJson()));
    const ProcessResult ran = runOracle(QStringLiteral("transforms_oracle.py"),
                                        {QStringLiteral("run"), requestPath, out});
    QVERIFY2(ran.exitCode == 0, ran.err.constData());
    const QJsonArray results
        = QJsonDocument::fromJson(ran.out).object().value(QStringLiteral("results")).toArray();
    QCOMPARE(results.size(), preview.train.size());
    const Result<CompiledPipeline> compiled
        = CompiledPipeline::compile(workspace->trainEditor()->pipeline());
    QVERIFY(compiled.ok());
    for (int k = 0; k < results.size(); ++k) {
        const QJsonObject r = results[k].toObject();
        QVERIFY2(r.value(QStringLiteral("ok")).toBool(),
                 qPrintable(r.value(QStringLiteral("error")).toString()));
        const QJsonArray shape = r.value(QStringLiteral("shape")).toArray();
        ImageTensor tensor;
        tensor.channels = shape[0].toInt();
        tensor.height = shape[1].toInt();
        tensor.width = shape[2].toInt();
        QFile file(out + QStringLiteral("/%1.bin").arg(k));
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray bytes = file.readAll();
        QCOMPARE(bytes.size(), qsizetype(tensor.numel() * sizeof(float)));
        tensor.data.resize(size_t(tensor.numel()));
        std::memcpy(tensor.data.data(), bytes.constData(), size_t(bytes.size()));
        // Shown the same way as the preview shows its own tensor: denormalised, rounded.
        const QImage expected
            = tensorToImage(tensor, compiled->normalizeMean(), compiled->normalizeStd());
        QCOMPARE(preview.train[k].image.size(), expected.size());
        int worst = 0;
        for (int y = 0; y < expected.height(); ++y) {
            const uchar *a = preview.train[k].image.constScanLine(y);
            const uchar *b = expected.constScanLine(y);
            for (int x = 0; x < expected.width() * 3; ++x)
                worst = std::max(worst, std::abs(int(a[x]) - int(b[x])));
        }
        QVERIFY2(worst == 0,
                 qPrintable(QStringLiteral("draw %1 differs from torchvision by up "
                                           "to %2 levels")
                                .arg(k)
                                .arg(worst)));
    }
}

void TestTransformsWorkspace::sameSeedSameImages()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    auto images = [&] {
        QList<QImage> out;
        for (const PreviewOutput &o : workspace->lastPreview().train)
            out.append(o.image);
        return out;
    };
    QSignalSpy spy(workspace.get(), &TransformsWorkspace::previewUpdated);
    workspace->setSeed(42);
    QVERIFY(waitPreview(spy));
    const QList<QImage> first = images();
    QCOMPARE(workspace->findChild<QSpinBox *>(QStringLiteral("seedSpin"))->value(), 42);

    spy.clear();
    workspace->reseed();
    QVERIFY(waitPreview(spy));
    QVERIFY(workspace->seed() != 42);
    QVERIFY(images() != first); // eight new crops

    spy.clear();
    workspace->findChild<QSpinBox *>(QStringLiteral("seedSpin"))->setValue(42);
    QVERIFY(waitPreview(spy));
    QCOMPARE(workspace->seed(), quint64(42));
    QCOMPARE(images(), first);
    // The draws are independent: draw k of seed s is draw 0 of seed s + k.
    spy.clear();
    workspace->setSeed(45);
    QVERIFY(waitPreview(spy));
    QCOMPARE(workspace->lastPreview().train[0].image, first[3]);
}

void TestTransformsWorkspace::codeEditsUpdateTheList()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *train = workspace->trainEditor();
    QSignalSpy preview(workspace.get(), &TransformsWorkspace::previewUpdated);
    // Typed into the code view: applied after the pause, without a rewrite of the user's text.
    const QString typed = QStringLiteral("T.Compose([\n"
                                         "    T.RandomCrop(96, padding=4),   # small crops\n"
                                         "    # T.RandomRotation(30),\n"
                                         "    T.ToTensor(),\n"
                                         "])");
    train->codeEdit()->setPlainText(typed);
    QTRY_COMPARE_WITH_TIMEOUT(train->model()->rowCount(), 3, 5000);
    QCOMPARE(train->code(), typed);
    QCOMPARE(train->model()->item(0).step.name, QStringLiteral("RandomCrop"));
    QVERIFY(!train->model()->item(1).enabled);
    QCOMPARE(train->model()->item(1).step.name, QStringLiteral("RandomRotation"));
    QCOMPARE(stepNames(train->pipeline()),
             (QStringList{QStringLiteral("RandomCrop"), QStringLiteral("ToTensor")}));
    QVERIFY(train->codeError().isEmpty());
    QVERIFY(waitPreview(preview));
    QTRY_COMPARE_WITH_TIMEOUT(workspace->lastPreview().train.value(0).size, QSize(96, 96), 5000);
    // A tensor without Normalize: shown as it is, statistics in [0, 1].
    QVERIFY(!workspace->lastPreview().train[0].denormalised);
    QCOMPARE(workspace->lastPreview().trainSteps.size(), 3);
}

void TestTransformsWorkspace::badCodeShowsErrorAndKeepsPipeline()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *val = workspace->valEditor();
    const PipelineItems before = val->items();
    QSignalSpy errors(val, &PipelineEditor::codeErrorChanged);
    const QString typed = QStringLiteral("transforms.Compose([\n"
                                         "    transforms.Resize(256),\n"
                                         "    transforms.CentreCrop(224),\n"
                                         "])");
    val->setCode(typed);
    QCOMPARE(errors.count(), 1);
    QVERIFY2(val->codeError().contains(QStringLiteral("line 3, column 16")),
             qPrintable(val->codeError()));
    QVERIFY(val->codeError().contains(QStringLiteral("did you mean CenterCrop")));
    QVERIFY(val->codeError().contains(QStringLiteral("\n               ^")));
    QVERIFY(!val->codeErrorLabel()->isHidden()); // (its tab is not the current one)
    QCOMPARE(val->codeErrorLabel()->text(), val->codeError());
    QCOMPARE(val->code(), typed); // the user's text stays
    QCOMPARE(val->items(), before); // and so does the last valid pipeline
    QVERIFY(!val->codeEdit()->extraSelections().isEmpty()); // the spot is marked
    QVERIFY(!workspace->pipelineTabs()->tabIcon(1).isNull());
    // What is saved is the last valid pipeline, not the broken text.
    QCOMPARE(pipelineItemsFromSource(val->sourceToSave()).value(), before);

    val->setCode(
        QString(typed).replace(QStringLiteral("CentreCrop"), QStringLiteral("CenterCrop")));
    QVERIFY(val->codeError().isEmpty());
    QVERIFY(val->codeErrorLabel()->isHidden());
    QCOMPARE(stepNames(val->pipeline()),
             (QStringList{QStringLiteral("Resize"), QStringLiteral("CenterCrop")}));
}

void TestTransformsWorkspace::listEditsRewriteTheCode()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *train = workspace->trainEditor();
    train->selectStep(1); // after RandomHorizontalFlip
    QSignalSpy preview(workspace.get(), &TransformsWorkspace::previewUpdated);
    train->addStep(QStringLiteral("RandomRotation"));
    QCOMPARE(train->selectedRow(), 2);
    QVERIFY2(train->code().contains(QStringLiteral("    transforms.RandomRotation(15),\n")),
             qPrintable(train->code()));
    QVERIFY(waitPreview(preview));
    QCOMPARE(workspace->lastPreview().trainSteps.size(), 6);

    // Disable it: a commented-out line, not run.
    preview.clear();
    train->model()->setData(train->model()->index(2), Qt::Unchecked, Qt::CheckStateRole);
    QVERIFY(train->code().contains(QStringLiteral("    # transforms.RandomRotation(15),\n")));
    QVERIFY(waitPreview(preview));
    QCOMPARE(workspace->lastPreview().trainSteps.size(), 5);

    // Keyboard: Ctrl+Up moves it, Delete removes it.
    train->stepList()->setFocus();
    train->selectStep(2);
    QTest::keyClick(train->stepList(), Qt::Key_Up, Qt::ControlModifier);
    QCOMPARE(train->model()->item(1).step.name, QStringLiteral("RandomRotation"));
    QCOMPARE(train->selectedRow(), 1);
    QTest::keyClick(train->stepList(), Qt::Key_Space);
    QVERIFY(train->model()->item(1).enabled);
    QTest::keyClick(train->stepList(), Qt::Key_Delete);
    QCOMPARE(train->model()->rowCount(), 4);
    QVERIFY(!train->code().contains(QStringLiteral("RandomRotation")));
    // The code view's undo brings the list edit back.
    train->codeEdit()->undo();
    train->applyCodeNow();
    QCOMPARE(train->model()->rowCount(), 5);
}

void TestTransformsWorkspace::parameterForm()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *train = workspace->trainEditor();
    train->selectStep(0); // RandomResizedCrop(224)
    StepForm *form = train->form();
    QCOMPARE(form->step().name, QStringLiteral("RandomResizedCrop"));
    // Typed editors where the default says what the value is.
    auto *size = qobject_cast<QLineEdit *>(form->editor(QStringLiteral("size")));
    QVERIFY(size);
    QCOMPARE(size->text(), QStringLiteral("224"));
    QVERIFY(form->editor(QStringLiteral("scale"))->findChildren<QDoubleSpinBox *>().size() == 2);
    auto *interpolation = qobject_cast<QComboBox *>(form->editor(QStringLiteral("interpolation")));
    QVERIFY(interpolation);
    QCOMPARE(interpolation->currentText(), QStringLiteral("BILINEAR"));
    QVERIFY(qobject_cast<QComboBox *>(form->editor(QStringLiteral("antialias"))));

    // A literal: applied on Enter, the code follows.
    size->setText(QStringLiteral("(96, 128)"));
    QTest::keyClick(size, Qt::Key_Return);
    QCOMPARE(train->model()->item(0).step.args.constFirst().value,
             TransformValue::tuple({TransformValue::integer(96), TransformValue::integer(128)}));
    QVERIFY(train->code().contains(QStringLiteral("transforms.RandomResizedCrop((96, 128)),")));

    // An unreadable literal: the field says why, the step stays as it was.
    size->setText(QStringLiteral("(96,"));
    QTest::keyClick(size, Qt::Key_Return);
    QVERIFY(!form->fieldError(QStringLiteral("size")).isEmpty());
    QVERIFY(train->code().contains(QStringLiteral("RandomResizedCrop((96, 128))")));

    // Range spin boxes keep the other bound exact (4/3 is not rounded to 1.3333).
    const QList<QDoubleSpinBox *> scale
        = form->editor(QStringLiteral("scale"))->findChildren<QDoubleSpinBox *>();
    scale[0]->setValue(0.5);
    QVERIFY2(train->code().contains(QStringLiteral("scale=(0.5, 1.0)")), qPrintable(train->code()));
    QVERIFY(!train->code().contains(QStringLiteral("ratio=")));

    interpolation->setCurrentText(QStringLiteral("BICUBIC"));
    QVERIFY(train->code().contains(
        QStringLiteral("interpolation=transforms.InterpolationMode.BICUBIC")));

    // A flip's p is a spin box, Grayscale's channel count a spin box, expand a check box.
    train->selectStep(1);
    QVERIFY(qobject_cast<QDoubleSpinBox *>(train->form()->editor(QStringLiteral("p"))));
    train->addStep(QStringLiteral("RandomRotation"));
    auto *expand = qobject_cast<QCheckBox *>(train->form()->editor(QStringLiteral("expand")));
    QVERIFY(expand);
    expand->setChecked(true);
    QVERIFY(train->code().contains(QStringLiteral("RandomRotation(15, expand=True)")));
}

void TestTransformsWorkspace::engineErrorsShowInPlace()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *train = workspace->trainEditor();
    train->selectStep(0);
    auto *size = qobject_cast<QLineEdit *>(train->form()->editor(QStringLiteral("size")));
    QVERIFY(size);
    QSignalSpy preview(workspace.get(), &TransformsWorkspace::previewUpdated);
    // Parses, but torchvision's constructor refuses it: the form and the preview say so.
    size->setText(QStringLiteral("'big'"));
    QTest::keyClick(size, Qt::Key_Return);
    QVERIFY(train->form()->problem().contains(QStringLiteral("size")));
    QVERIFY(!train->model()->index(0).data(PipelineModel::ProblemRole).toString().isEmpty());
    QVERIFY(waitPreview(preview));
    QVERIFY2(
        workspace->lastPreview().trainError.startsWith(QStringLiteral("Step 1, RandomResizedCrop")),
        qPrintable(workspace->lastPreview().trainError));
    QVERIFY(workspace->preview()->trainErrorLabel()->isVisibleTo(workspace.get()));
    QVERIFY(workspace->lastPreview().valError.isEmpty()); // val still previews
    QVERIFY(!workspace->lastPreview().val.image.isNull());

    // A run-time failure (a crop larger than the image) is shown on the draws.
    preview.clear();
    train->setCode(QStringLiteral("transforms.Compose([transforms.RandomCrop(1000), "
                                  "transforms.ToTensor()])"));
    QVERIFY(waitPreview(preview));
    QVERIFY(workspace->lastPreview().trainError.isEmpty());
    const QString error = workspace->lastPreview().train.value(0).error;
    QVERIFY2(error.contains(QStringLiteral("RandomCrop")), qPrintable(error));
    // Every draw fails alike: said once, in place of the grid.
    QCOMPARE(workspace->preview()->trainErrorLabel()->text(), error);
    QVERIFY(workspace->preview()->trainErrorLabel()->isVisibleTo(workspace.get()));
}

void TestTransformsWorkspace::hugeOutputIsRefusedInPlace()
{
    // The pipeline would have taken the app down (10 GB, then std::bad_alloc): the
    // preview's memory bound (at most 1 GiB) refuses it before the resize, off the GUI thread,
    // and says so where the draws would be.
    QVERIFY(previewMemoryBound() <= qint64(1) << 30);
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *train = workspace->trainEditor();
    QSignalSpy preview(workspace.get(), &TransformsWorkspace::previewUpdated);
    train->setCode(QStringLiteral("transforms.Compose([transforms.Resize((60000, 60000)), "
                                  "transforms.ToTensor()])"));
    QVERIFY(waitPreview(preview));
    QVERIFY(workspace->lastPreview().trainError.isEmpty()); // it compiles: a run-time refusal
    const QString error = workspace->lastPreview().train.value(0).error;
    QVERIFY2(error.startsWith(QStringLiteral("Step 1, Resize: its output, PIL Image RGB 60000 × "
                                             "60000, would take 10.1 GiB")),
             qPrintable(error));
    QCOMPARE(workspace->preview()->trainErrorLabel()->text(), error);
    QVERIFY(workspace->preview()->trainErrorLabel()->isVisibleTo(workspace.get()));
    QVERIFY(!workspace->lastPreview().val.image.isNull()); // val still previews

    // The app is still up: a pipeline that fits previews again.
    preview.clear();
    train->setCode(QStringLiteral("transforms.Compose([transforms.Resize((64, 64)), "
                                  "transforms.ToTensor()])"));
    QVERIFY(waitPreview(preview));
    QVERIFY2(workspace->lastPreview().train.value(0).error.isEmpty(),
             qPrintable(workspace->lastPreview().train.value(0).error));
    QCOMPARE(workspace->lastPreview().train.value(0).size, QSize(64, 64));
    QVERIFY(!workspace->preview()->trainErrorLabel()->isVisibleTo(workspace.get()));
}

void TestTransformsWorkspace::findingsWithFixes()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    AdvicePanel *panel = workspace->advicePanel();
    // Val: Resize(256) keeps the aspect ratio of these mixed-size images: batches will not stack.
    workspace->valEditor()->setCode(
        QStringLiteral("transforms.Compose([transforms.Resize(256), transforms.ToTensor()])"));
    int row = -1;
    for (int i = 0; i < panel->count(); ++i)
        if (panel->role(i) == PipelineRole::Val
            && panel->message(i).contains(QStringLiteral("aspect ratio")))
            row = i;
    QVERIFY2(row >= 0, "no finding about Resize(256)");
    QVERIFY(panel->fixButton(row));
    QVERIFY(!workspace->valEditor()->model()->index(0).data(Qt::DecorationRole).isNull());
    panel->fixButton(row)->click();
    QCOMPARE(workspace->valEditor()->pipeline().steps[0].args[0].value,
             TransformValue::tuple({TransformValue::integer(256), TransformValue::integer(256)}));
    QVERIFY(workspace->valEditor()->code().contains(QStringLiteral("Resize((256, 256))")));
    for (const PipelineAdvice &a : workspace->advice(PipelineRole::Val))
        QVERIFY(!a.message.contains(QStringLiteral("aspect ratio")));

    // Train: Normalize before ToTensor is an error, with a fix that moves ToTensor.
    workspace->trainEditor()->setCode(
        QStringLiteral("transforms.Compose([transforms.RandomResizedCrop(224), "
                       "transforms.Normalize((0.5,), (0.5,)), transforms.ToTensor()])"));
    row = -1;
    for (int i = 0; i < panel->count(); ++i)
        if (panel->role(i) == PipelineRole::Train
            && panel->message(i).contains(QStringLiteral("Put ToTensor() before")))
            row = i;
    QVERIFY(row >= 0);
    QCOMPARE(row, 0); // errors come first
    panel->fixButton(row)->click();
    QCOMPARE(stepNames(workspace->trainEditor()->pipeline()),
             (QStringList{QStringLiteral("RandomResizedCrop"), QStringLiteral("ToTensor"),
                          QStringLiteral("Normalize")}));
}

void TestTransformsWorkspace::exportImportRoundTrip()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    workspace->trainEditor()->setCode(
        QStringLiteral("transforms.Compose([\n"
                       "    transforms.RandomResizedCrop(160, scale=(0.25, 1.0)),\n"
                       "    # transforms.ColorJitter(brightness=0.4),\n"
                       "    transforms.RandomHorizontalFlip(),\n"
                       "    transforms.ToTensor(),\n"
                       "])"));
    const PipelineItems train = workspace->trainEditor()->items();
    const PipelineItems val = workspace->valEditor()->items();
    QCOMPARE(train.size(), 4);

    const QString path = m_tmp.filePath(QStringLiteral("exported/transforms.py"));
    QVERIFY(QDir().mkpath(QFileInfo(path).absolutePath()));
    const Status saved = workspace->exportPython(path);
    QVERIFY2(saved.ok(), qPrintable(saved.errorMessage()));
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QString text = QString::fromUtf8(file.readAll());
    QVERIFY(text.contains(QStringLiteral("from torchvision import transforms")));
    QVERIFY(text.contains(QStringLiteral("    # transforms.ColorJitter(brightness=0.4),\n")));

    // Python runs the file and gets both pipelines (the disabled step is a comment to it).
    const ProcessResult ran
        = runOracle(QStringLiteral("transforms_oracle.py"), {QStringLiteral("exec"), path});
    QVERIFY2(ran.exitCode == 0, ran.err.constData());
    const QJsonObject reprs = QJsonDocument::fromJson(ran.out).object();
    QVERIFY(reprs.contains(QStringLiteral("train_transform")));
    QVERIFY(reprs.contains(QStringLiteral("val_transform")));
    const QString trainRepr = reprs.value(QStringLiteral("train_transform")).toString();
    QVERIFY2(
        trainRepr.contains(QStringLiteral("RandomResizedCrop(size=(160, 160), scale=(0.25, 1.0)")),
        qPrintable(trainRepr));
    QVERIFY(!trainRepr.contains(QStringLiteral("ColorJitter")));

    // Something else, then import: both come back, the disabled step too.
    workspace->resetToDefaults(false);
    workspace->valEditor()->setCode(QStringLiteral("transforms.Compose([transforms.ToTensor()])"));
    QVERIFY(workspace->trainEditor()->items() != train);
    const Status imported = workspace->importPython(path);
    QVERIFY2(imported.ok(), qPrintable(imported.errorMessage()));
    QCOMPARE(workspace->trainEditor()->items(), train);
    QCOMPARE(workspace->valEditor()->items(), val);
}

void TestTransformsWorkspace::ambiguousImportSaysSo()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    const QString path = m_tmp.filePath(QStringLiteral("two.py"));
    QVERIFY(writeFile(path,
                      "import torchvision.transforms as T\n"
                      "small = T.Compose([T.Resize(64), T.ToTensor()])\n"
                      "large = T.Compose([T.Resize(512), T.ToTensor()])\n"));
    const Status imported = workspace->importPython(path);
    QVERIFY(!imported.ok());
    QVERIFY2(imported.errorMessage().contains(QStringLiteral("“small” (line 2)")),
             qPrintable(imported.errorMessage()));
    // Names that say it are enough, in any form.
    QVERIFY(writeFile(path,
                      "import torchvision.transforms as T\n"
                      "tfm_val = T.Compose([T.Resize(64), T.ToTensor()])\n"
                      "TrainTfm = T.Compose([T.Resize(72), T.ToTensor()])\n"));
    const Status named = workspace->importPython(path);
    QVERIFY2(named.ok(), qPrintable(named.errorMessage()));
    QCOMPARE(workspace->trainEditor()->pipeline().steps[0].args[0].value,
             TransformValue::integer(72));
    QCOMPARE(workspace->valEditor()->pipeline().steps[0].args[0].value,
             TransformValue::integer(64));
    // Not Python pipelines at all: the core's message.
    QVERIFY(writeFile(path, "x = 1\n"));
    QVERIFY(workspace->importPython(path).errorMessage().contains(QStringLiteral("No transform")));
}

void TestTransformsWorkspace::meanAndStdFromDataset()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    const QStringList paths = workspace->statisticsPaths();
    QCOMPARE(paths.size(), 5);
    DatasetStatsJob *job = workspace->statsJob();
    QSignalSpy finished(job, &DatasetStatsJob::finished);
    QSignalSpy failed(job, &DatasetStatsJob::failed);
    QSignalSpy cancelled(job, &DatasetStatsJob::cancelled);
    job->start(paths, 100, 7, 2);
    QVERIFY(finished.wait(kWaitMs));
    QCOMPARE(failed.count() + cancelled.count(), 0);
    const auto stats = finished.constFirst().constFirst().value<DatasetChannelStats>();
    QCOMPARE(stats.images, 5);

    // The oracle's numbers over the same images.
    const ProcessResult oracle = runOracle(QStringLiteral("transforms_oracle.py"),
                                           QStringList{QStringLiteral("stats")} + paths);
    QVERIFY2(oracle.exitCode == 0, oracle.err.constData());
    const QJsonObject expected = QJsonDocument::fromJson(oracle.out).object();
    for (int c = 0; c < 3; ++c) {
        QVERIFY(
            std::abs(stats.mean[c] - expected.value(QStringLiteral("mean")).toArray()[c].toDouble())
            < 1e-6);
        QVERIFY(
            std::abs(stats.std[c] - expected.value(QStringLiteral("std")).toArray()[c].toDouble())
            < 1e-6);
    }

    workspace->applyNormalize(stats.mean, stats.std);
    for (PipelineEditor *editor : {workspace->trainEditor(), workspace->valEditor()}) {
        const TransformStep normalize = editor->pipeline().steps.constLast();
        QCOMPARE(normalize.name, QStringLiteral("Normalize"));
        QCOMPARE(normalize.args[0].value.items.size(), 3);
        QCOMPARE(normalize.args[0].value.items[0].floatValue,
                 std::round(stats.mean[0] * 10000) / 10000);
    }

    // Cancel is honoured.
    QSignalSpy cancelledAgain(job, &DatasetStatsJob::cancelled);
    QSignalSpy finishedAgain(job, &DatasetStatsJob::finished);
    QStringList many;
    for (int i = 0; i < 400; ++i)
        many += paths;
    job->start(many, 2000, 7, 1);
    job->requestCancel();
    QVERIFY(cancelledAgain.count() > 0 || cancelledAgain.wait(kWaitMs));
    QCOMPARE(finishedAgain.count(), 0);
}

void TestTransformsWorkspace::pipelinesPersistPerDataset()
{
    const QString typed = QStringLiteral("transforms.Compose([\n"
                                         "    transforms.Resize((128, 128)),  # fixed size\n"
                                         "    # transforms.RandomVerticalFlip(),\n"
                                         "    transforms.ToTensor(),\n"
                                         "])");
    {
        const auto workspace = openWorkspace();
        QVERIFY(workspace);
        workspace->trainEditor()->setCode(typed);
        workspace->saveState(); // flushes the pending save
    }
    const Settings::PipelineSources saved = m_settings->transformPipelines(m_root);
    QCOMPARE(saved.train, typed);
    const auto again = openWorkspace();
    QVERIFY(again);
    QCOMPARE(again->trainEditor()->code(), typed); // the user's own text, comment included
    QCOMPARE(again->trainEditor()->model()->rowCount(), 3);
    QVERIFY(!again->trainEditor()->model()->item(1).enabled);

    // Reset forgets them.
    again->resetToDefaults(false);
    QVERIFY(m_settings->transformPipelines(m_root).isEmpty());
    QCOMPARE(again->trainEditor()->model()->item(0).step.name, QStringLiteral("RandomResizedCrop"));
}

void TestTransformsWorkspace::mainWindowFollowsTheDataset()
{
    MainWindow window;
    window.resize(1440, 900);
    window.show();
    TransformsWorkspace *transforms = window.transforms();
    QVERIFY(!transforms->hasDataset());
    QSignalSpy scanned(window.datasets(), &DatasetsWorkspace::scanFinished);
    QSignalSpy ready(transforms, &TransformsWorkspace::pipelinesReady);
    window.openDataset(m_root);
    QVERIFY(scanned.wait(kWaitMs));
    QVERIFY(ready.count() > 0 || ready.wait(kWaitMs));
    QCOMPARE(transforms->datasetRoot(), QDir::cleanPath(m_root));

    // Ctrl+2 shows the Transforms workspace; the preview runs once it is visible.
    QSignalSpy preview(transforms, &TransformsWorkspace::previewUpdated);
    QTest::keyClick(&window, Qt::Key_2, Qt::ControlModifier);
    QTRY_VERIFY_WITH_TIMEOUT(transforms->isVisible(), 5000);
    QVERIFY(waitPreview(preview));
    QVERIFY(transforms->lastPreview().path.endsWith(QStringLiteral("cat/001.jpg")));

    // The image selected in the Datasets workspace is the one previewed.
    preview.clear();
    ThumbnailView *thumbnails = window.datasets()->thumbnailView();
    QVERIFY(thumbnails->setCurrentSampleRow(3));
    QVERIFY(waitPreview(preview));
    QVERIFY2(transforms->lastPreview().path.endsWith(QStringLiteral("dog/002.png")),
             qPrintable(transforms->lastPreview().path));
    QCOMPARE(transforms->lastPreview().original.size(), QSize(64, 48));
    // Next and previous step through the dataset.
    preview.clear();
    transforms->showNextImage();
    QVERIFY(waitPreview(preview));
    QVERIFY(transforms->lastPreview().path.endsWith(QStringLiteral("dog/003.jpg")));

    // Closing the dataset empties the workspace.
    window.datasets()->closeDataset();
    transforms->clearDataset();
    QVERIFY(window.findChild<QWidget *>(QStringLiteral("transformsEmptyPage"))->isVisible());
}

void TestTransformsWorkspace::policiesAndLambdaInTheStrip()
{
    // A pasted recipe with a container, a policy and a Lambda: the Lambda is skipped with its
    // reason in the strip, the rest previews, and the policy's step says what it drew.
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *train = workspace->trainEditor();
    QSignalSpy preview(workspace.get(), &TransformsWorkspace::previewUpdated);
    train->codeEdit()->setPlainText(
        QStringLiteral("T.Compose([T.RandomResizedCrop(96), "
                       "T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4), T.RandomGrayscale()], p=0.8), "
                       "T.TrivialAugmentWide(), T.Lambda(lambda img: img), T.ToTensor()])"));
    QTRY_COMPARE_WITH_TIMEOUT(train->model()->rowCount(), 5, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(workspace->lastPreview().trainSteps.size() == 6, 10000);
    const PreviewResult &result = workspace->lastPreview();
    QVERIFY2(result.trainError.isEmpty(), qPrintable(result.trainError));
    QCOMPARE(result.trainSteps[3].name, QStringLiteral("TrivialAugmentWide"));
    QVERIFY2(result.trainSteps[3].summary.startsWith(QStringLiteral("→ ")),
             qPrintable(result.trainSteps[3].summary));
    QCOMPARE(result.trainSteps[4].name, QStringLiteral("Lambda"));
    QVERIFY(!result.trainSteps[4].applied);
    QVERIFY(result.trainSteps[4].summary.startsWith(QStringLiteral("skipped: a Lambda runs")));
    for (const PreviewOutput &out : result.train)
        QCOMPARE(out.image.size(), QSize(96, 96));
}

void TestTransformsWorkspace::batchViewShowsOneTrainingBatch()
{
    const auto workspace = openWorkspace();
    QVERIFY(workspace);
    PipelineEditor *train = workspace->trainEditor();
    train->codeEdit()->setPlainText(
        QStringLiteral("T.Compose([T.RandomResizedCrop(64), T.TrivialAugmentWide(), T.ToTensor(), "
                       "T.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])])"));
    // Four rows before and after: wait for the new steps themselves.
    QTRY_COMPARE_WITH_TIMEOUT(stepNames(train->pipeline()).value(1),
                              QStringLiteral("TrivialAugmentWide"), 5000);
    workspace->setSeed(11);
    workspace->findChild<QPushButton *>(QStringLiteral("showBatchButton"))->click();
    BatchView *view = workspace->batchView();
    QVERIFY(view);
    QSignalSpy shown(view, &BatchView::batchShown);
    QVERIFY(shown.count() > 0 || shown.wait(kWaitMs));
    // The loader's own first batch for seed 11: its labels, in its order.
    const IndexPtr index = m_scan.index(QStringLiteral("train"))
        ? m_scan.index(QStringLiteral("train"))
        : m_scan.indexes.first();
    const Result<BatchPreview> expected = makeBatchPreview(index, train->pipeline(), 11, 32);
    QVERIFY2(expected.ok(), qPrintable(expected.errorMessage()));
    QCOMPARE(view->shownLabels(), expected->labels);
    QCOMPARE(view->shownLabels().size(), 5);
    QCOMPARE(view->shownLabels().count(QStringLiteral("dog")), 3);
    QVERIFY2(view->status().contains(QStringLiteral("seed 11")), qPrintable(view->status()));
    QCOMPARE(expected->images.constFirst().size(), QSize(64, 64));
    // Reseed: the next seed's batch.
    shown.clear();
    view->findChild<QPushButton *>(QStringLiteral("reseedButton"))->click();
    QVERIFY(shown.count() > 0 || shown.wait(kWaitMs));
    QCOMPARE(view->seed(), quint64(12));
    QVERIFY2(view->status().contains(QStringLiteral("seed 12")), qPrintable(view->status()));
    // A pipeline training would refuse gives the reason, not a batch.
    const Result<BatchPreview> refused = makeBatchPreview(
        index, parseTransforms(QStringLiteral("[T.Lambda(lambda x: x), T.ToTensor()]")).value(), 1,
        8);
    QVERIFY(!refused.ok());
    QVERIFY2(refused.errorMessage().contains(QStringLiteral("Lambda")),
             qPrintable(refused.errorMessage()));
}

QTEST_MAIN(TestTransformsWorkspace)
#include "tst_transformsworkspace.moc"
