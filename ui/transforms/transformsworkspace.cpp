#include "transforms/transformsworkspace.h"

#include "base/settings.h"
#include "common/batchview.h"
#include "common/emptystatepage.h"
#include "common/icons.h"
#include "common/warningbanner.h"
#include "transforms/advicepanel.h"
#include "transforms/pipelineeditor.h"
#include "transforms/stepform.h"
#include "transforms/transformpreview.h"

#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressDialog>
#include <QPushButton>
#include <QRandomGenerator>
#include <QSaveFile>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QStyle>
#include <QTabWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include <climits>

namespace ifs {

namespace {

constexpr int kStatsImages = 2000; // images sampled for the mean and std

bool looksLikeTrain(const QString &name)
{
    return name.contains(QStringLiteral("train"), Qt::CaseInsensitive);
}

bool looksLikeVal(const QString &name)
{
    for (const char16_t *word : {u"val", u"test", u"eval"})
        if (name.contains(QString::fromUtf16(word), Qt::CaseInsensitive))
            return true;
    return false;
}

QString joined(const std::vector<double> &values)
{
    QStringList parts;
    for (double v : values)
        parts.append(QString::number(v, 'f', 4));
    return u'(' + parts.join(QStringLiteral(", ")) + u')';
}

} // namespace

TransformsWorkspace::TransformsWorkspace(Settings *settings, QWidget *parent)
    : QWidget(parent)
    , m_settings(settings)
    , m_previewJob(new TransformPreviewJob(this))
    , m_statsJob(new DatasetStatsJob(this))
    , m_pages(new QStackedWidget(this))
{
    setObjectName(QStringLiteral("transformsWorkspace"));
    m_seed = std::min<quint64>(m_settings->previewSeed(), INT_MAX);
    m_pages->addWidget(buildEmptyPage());
    m_pages->addWidget(buildWorkspacePage());
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_pages);

    m_previewTimer.setSingleShot(true);
    m_previewTimer.setInterval(80);
    connect(&m_previewTimer, &QTimer::timeout, this, &TransformsWorkspace::requestPreview);
    m_saveTimer.setSingleShot(true);
    m_saveTimer.setInterval(600);
    connect(&m_saveTimer, &QTimer::timeout, this, &TransformsWorkspace::savePipelines);
    connect(m_previewJob, &TransformPreviewJob::finished, this,
            &TransformsWorkspace::onPreviewFinished);
    connect(m_previewJob, &TransformPreviewJob::failed, this,
            &TransformsWorkspace::onPreviewFailed);
}

TransformsWorkspace::~TransformsWorkspace() = default;

QWidget *TransformsWorkspace::buildEmptyPage()
{
    auto *page = new EmptyStatePage(
        QStringLiteral("transform-crop-and-resize"), tr("Transforms need a dataset"),
        tr("Open a dataset to see what torchvision's transforms make of its images: edit the "
           "train and val pipelines as steps or as Python, catch the mistakes that cost hours "
           "before training, and preview random draws exactly as PyTorch makes them "
           "(same seed, same pixels)."),
        this);
    page->setObjectName(QStringLiteral("transformsEmptyPage"));
    page->openButton()->setObjectName(QStringLiteral("transformsOpenButton"));
    page->sampleButton()->setObjectName(QStringLiteral("transformsSampleButton"));
    connect(page, &EmptyStatePage::openFolderRequested, this,
            &TransformsWorkspace::openFolderRequested);
    connect(page, &EmptyStatePage::openSampleRequested, this,
            &TransformsWorkspace::openSampleRequested);
    return page;
}

QWidget *TransformsWorkspace::buildWorkspacePage()
{
    auto *page = new QWidget(this);

    QHBoxLayout *header = buildHeader(page);
    m_banner = new WarningBanner(page);

    // Left: the two pipelines and the findings.
    buildPipelinesPane(page);

    // Right: which image, draws and seed, then the preview.
    QHBoxLayout *toolbar = buildPreviewToolbar(page);
    m_preview = new TransformPreview(page);
    connect(m_preview, &TransformPreview::drawClicked, this, [this](int draw) {
        m_traceDraw = draw;
        m_preview->setStripShowsVal(false);
        requestPreview();
    });
    auto *right = new QWidget(page);
    auto *rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    rightLayout->addLayout(toolbar);
    rightLayout->addWidget(m_preview, 1);

    m_mainSplitter = new QSplitter(Qt::Horizontal, page);
    m_mainSplitter->setObjectName(QStringLiteral("transformsSplitter"));
    m_mainSplitter->addWidget(m_leftSplitter);
    m_mainSplitter->addWidget(right);
    m_mainSplitter->setStretchFactor(0, 2);
    m_mainSplitter->setStretchFactor(1, 5);
    m_mainSplitter->setChildrenCollapsible(false);
    m_leftSplitter->setMinimumWidth(320);
    right->setMinimumWidth(420);
    m_mainSplitter->setSizes({430, 900});

    restoreSplitters();

    auto *layout = new QVBoxLayout(page);
    layout->setContentsMargins(10, 8, 10, 4);
    layout->addLayout(header);
    layout->addWidget(m_banner);
    layout->addWidget(m_mainSplitter, 1);
    return page;
}

QHBoxLayout *TransformsWorkspace::buildHeader(QWidget *page)
{
    m_title = new QLabel(page);
    m_title->setObjectName(QStringLiteral("transformsTitle"));
    QFont titleFont = m_title->font();
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.35);
    titleFont.setBold(true);
    m_title->setFont(titleFont);
    auto *stats = new QPushButton(tr("Compute Mean/Std…"), page);
    stats->setObjectName(QStringLiteral("computeStatsButton"));
    stats->setToolTip(tr("Sample up to %1 images of the dataset, compute their per-channel mean "
                         "and std as ToTensor sees them, and put them into Normalize")
                          .arg(kStatsImages));
    connect(stats, &QPushButton::clicked, this, &TransformsWorkspace::computeMeanStdInteractive);
    auto *importButton = new QPushButton(tr("Import Python…"), page);
    importButton->setToolTip(tr("Read train and val pipelines from a Python file"));
    connect(importButton, &QPushButton::clicked, this,
            &TransformsWorkspace::importPythonInteractive);
    auto *exportButton = new QPushButton(tr("Export Python…"), page);
    exportButton->setToolTip(tr("Save both pipelines as a Python module for your training "
                                "script"));
    connect(exportButton, &QPushButton::clicked, this,
            &TransformsWorkspace::exportPythonInteractive);
    auto *batchButton = new QPushButton(tr("Show Batch…"), page);
    batchButton->setObjectName(QStringLiteral("showBatchButton"));
    batchButton->setToolTip(tr("One whole training batch as the loader makes it from the Train "
                               "pipeline, with labels"));
    connect(batchButton, &QPushButton::clicked, this, &TransformsWorkspace::showBatch);
    auto *reset = new QPushButton(tr("Reset to Defaults"), page);
    reset->setToolTip(tr("The pipelines suggested for this dataset's images"));
    connect(reset, &QPushButton::clicked, this, [this] { resetToDefaults(true); });
    auto *header = new QHBoxLayout;
    header->addWidget(m_title, 1);
    header->addWidget(stats);
    header->addSpacing(8);
    header->addWidget(importButton);
    header->addWidget(exportButton);
    header->addWidget(batchButton);
    header->addWidget(reset);
    return header;
}

void TransformsWorkspace::buildPipelinesPane(QWidget *page)
{
    m_train = new PipelineEditor(tr("Train"), page);
    m_train->setObjectName(QStringLiteral("trainEditor"));
    m_val = new PipelineEditor(tr("Val"), page);
    m_val->setObjectName(QStringLiteral("valEditor"));
    m_tabs = new QTabWidget(page);
    m_tabs->setObjectName(QStringLiteral("pipelineTabs"));
    m_tabs->setDocumentMode(true);
    m_tabs->addTab(m_train, tr("Train"));
    m_tabs->addTab(m_val, tr("Val"));
    m_tabs->setTabToolTip(0, tr("train_transform: random augmentation is expected here"));
    m_tabs->setTabToolTip(1, tr("val_transform: deterministic, the same every epoch"));
    for (PipelineEditor *editor : {m_train, m_val}) {
        connect(editor, &PipelineEditor::pipelineChanged, this,
                &TransformsWorkspace::onPipelineChanged);
        connect(editor, &PipelineEditor::codeErrorChanged, this,
                &TransformsWorkspace::updateTabIcons);
        connect(editor->splitter(), &QSplitter::splitterMoved, this, [this, editor] {
            // Both editors share one layout.
            PipelineEditor *other = editor == m_train ? m_val : m_train;
            other->splitter()->setSizes(editor->splitter()->sizes());
        });
    }
    m_advice = new AdvicePanel(page);
    connect(m_advice, &AdvicePanel::fixRequested, this,
            [this](PipelineRole role, const TransformPipeline &fixed) {
                editor(role)->setPipeline(fixed);
                m_tabs->setCurrentWidget(editor(role));
                Q_EMIT statusMessage(
                    tr("Applied the fix to the %1 pipeline")
                        .arg(role == PipelineRole::Train ? tr("train") : tr("val")));
            });
    connect(m_advice, &AdvicePanel::stepActivated, this, [this](PipelineRole role, int step) {
        PipelineEditor *target = editor(role);
        m_tabs->setCurrentWidget(target);
        if (step >= 0)
            target->selectStep(target->model()->rowOfEnabledStep(step));
    });
    m_leftSplitter = new QSplitter(Qt::Vertical, page);
    m_leftSplitter->setObjectName(QStringLiteral("transformsLeftSplitter"));
    m_leftSplitter->addWidget(m_tabs);
    m_leftSplitter->addWidget(m_advice);
    m_leftSplitter->setStretchFactor(0, 4);
    m_leftSplitter->setStretchFactor(1, 1);
    m_leftSplitter->setChildrenCollapsible(false);
    m_leftSplitter->setSizes({620, 180});
}

QHBoxLayout *TransformsWorkspace::buildPreviewToolbar(QWidget *page)
{
    m_previousButton = new QToolButton(page);
    m_previousButton->setArrowType(Qt::LeftArrow);
    m_previousButton->setToolTip(tr("Previous image (Alt+Left)"));
    m_nextButton = new QToolButton(page);
    m_nextButton->setArrowType(Qt::RightArrow);
    m_nextButton->setToolTip(tr("Next image (Alt+Right)"));
    m_randomButton = new QToolButton(page);
    m_randomButton->setText(tr("Random Image"));
    m_randomButton->setToolTip(tr("A random image of the dataset (Ctrl+Shift+R)"));
    connect(m_previousButton, &QToolButton::clicked, this, &TransformsWorkspace::showPreviousImage);
    connect(m_nextButton, &QToolButton::clicked, this, &TransformsWorkspace::showNextImage);
    connect(m_randomButton, &QToolButton::clicked, this, &TransformsWorkspace::showRandomImage);
    m_imageLabel = new QLabel(page);
    m_imageLabel->setObjectName(QStringLiteral("imageLabel"));
    m_imageLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_imageLabel->setMinimumWidth(80);
    m_imageLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_drawsSpin = new QSpinBox(page);
    m_drawsSpin->setObjectName(QStringLiteral("drawsSpin"));
    m_drawsSpin->setRange(1, 32);
    m_drawsSpin->setValue(m_settings->previewDraws());
    m_drawsSpin->setKeyboardTracking(false);
    m_drawsSpin->setToolTip(tr("Random draws of the train pipeline"));
    connect(m_drawsSpin, &QSpinBox::valueChanged, this, &TransformsWorkspace::setDraws);
    m_seedSpin = new QSpinBox(page);
    m_seedSpin->setObjectName(QStringLiteral("seedSpin"));
    m_seedSpin->setRange(0, INT_MAX);
    m_seedSpin->setValue(int(m_seed));
    m_seedSpin->setKeyboardTracking(false);
    m_seedSpin->setToolTip(tr("torch.manual_seed of the preview: draw k uses seed + k, so a seed "
                              "reproduces the preview here and in Python"));
    connect(m_seedSpin, &QSpinBox::valueChanged, this,
            [this](int value) { setSeed(quint64(value)); });
    m_reseedButton = new QPushButton(tr("Reseed"), page);
    m_reseedButton->setObjectName(QStringLiteral("reseedButton"));
    m_reseedButton->setToolTip(tr("New random draws (Ctrl+R)"));
    connect(m_reseedButton, &QPushButton::clicked, this, &TransformsWorkspace::reseed);
    auto *toolbar = new QHBoxLayout;
    toolbar->setSpacing(4);
    toolbar->addWidget(m_previousButton);
    toolbar->addWidget(m_nextButton);
    toolbar->addWidget(m_randomButton);
    toolbar->addSpacing(6);
    toolbar->addWidget(m_imageLabel, 1);
    toolbar->addSpacing(6);
    toolbar->addWidget(new QLabel(tr("Draws"), page));
    toolbar->addWidget(m_drawsSpin);
    toolbar->addSpacing(6);
    toolbar->addWidget(new QLabel(tr("Seed"), page));
    toolbar->addWidget(m_seedSpin);
    toolbar->addWidget(m_reseedButton);
    return toolbar;
}

void TransformsWorkspace::restoreSplitters()
{
    if (const QByteArray state = m_settings->splitterState(QStringLiteral("transforms"));
        !state.isEmpty())
        m_mainSplitter->restoreState(state);
    if (const QByteArray state = m_settings->splitterState(QStringLiteral("transformsLeft"));
        !state.isEmpty())
        m_leftSplitter->restoreState(state);
    if (const QByteArray state = m_settings->splitterState(QStringLiteral("transformsPreview"));
        !state.isEmpty())
        m_preview->splitter()->restoreState(state);
    if (const QByteArray state = m_settings->splitterState(QStringLiteral("transformsEditor"));
        !state.isEmpty()) {
        m_train->splitter()->restoreState(state);
        m_val->splitter()->restoreState(state);
    }
}

void TransformsWorkspace::saveState()
{
    m_settings->setSplitterState(QStringLiteral("transforms"), m_mainSplitter->saveState());
    m_settings->setSplitterState(QStringLiteral("transformsLeft"), m_leftSplitter->saveState());
    m_settings->setSplitterState(QStringLiteral("transformsPreview"),
                                 m_preview->splitter()->saveState());
    m_settings->setSplitterState(QStringLiteral("transformsEditor"),
                                 m_train->splitter()->saveState());
    if (m_saveTimer.isActive()) {
        m_saveTimer.stop();
        savePipelines();
    }
}

// ---- Dataset ---------------------------------------------------------------------------------

void TransformsWorkspace::setDataset(const QString &root, const DatasetScan &scan)
{
    const QString clean = QDir::cleanPath(root);
    const bool sameDataset = clean == m_root && m_pipelinesLoaded;
    if (!sameDataset && m_saveTimer.isActive()) {
        m_saveTimer.stop();
        savePipelines(); // the previous dataset's last edit
    }
    m_root = clean;
    m_scan = scan;
    m_statsIndex = scan.index(QStringLiteral("train"));
    if (!m_statsIndex && !scan.splits.isEmpty())
        m_statsIndex = scan.index(scan.splits.constFirst());
    if (!m_statsIndex && !scan.indexes.isEmpty())
        m_statsIndex = scan.indexes.first();
    if (sameDataset && m_statsIndex) {
        // A rescan: same pipelines, fresh index; stay near the image on show.
        m_index = m_statsIndex;
        m_sampleRow = m_index->samples.empty()
            ? -1
            : std::clamp(m_sampleRow, 0, int(m_index->samples.size()) - 1);
    } else {
        m_index = m_statsIndex;
        m_sampleRow = m_index && !m_index->samples.empty() ? 0 : -1;
        m_traceDraw = 0;
    }
    m_loadedImage = QImage(); // the files may have changed
    m_loadedPath.clear();
    m_title->setText(tr("Transforms for %1").arg(QFileInfo(m_root).fileName()));
    m_title->setToolTip(m_root);
    m_pages->setCurrentIndex(1);
    if (!sameDataset) {
        m_banner->dismiss();
        m_pipelinesLoaded = false;
        m_traitsKnown = false;
        m_traits = {};
        m_preview->clear(tr("Loading…"));
        m_advice->clear();
        loadPipelines();
    }

    // The images' traits (sizes, gray) decide the defaults and some findings; read off-thread.
    const QStringList paths = statisticsPaths(4096);
    // A later dataset supersedes the read: only the current dataset's traits arrive.
    m_traitsJob.onFinished([this](const DatasetTraits &traits) {
        m_traits = traits;
        m_traitsKnown = true;
        onTraitsReady();
    });
    m_traitsJob.start([paths](JobContext<NoProgress> &) -> Result<DatasetTraits> {
        return sampleDatasetTraits(paths);
    });

    updateImageLabel();
    if (m_pipelinesLoaded)
        schedulePreview();
    Q_EMIT datasetChanged(true);
}

void TransformsWorkspace::clearDataset()
{
    if (m_saveTimer.isActive()) {
        m_saveTimer.stop();
        savePipelines();
    }
    m_previewJob->cancel();
    m_traitsJob.discard();
    m_root.clear();
    m_scan = {};
    m_index.reset();
    m_statsIndex.reset();
    m_sampleRow = -1;
    m_pipelinesLoaded = false;
    m_traitsKnown = false;
    m_loadedImage = QImage();
    m_loadedPath.clear();
    m_pages->setCurrentIndex(0);
    Q_EMIT datasetChanged(false);
}

QStringList TransformsWorkspace::statisticsPaths(int limit) const
{
    QStringList paths;
    if (!m_statsIndex)
        return paths;
    const qsizetype count = qsizetype(m_statsIndex->samples.size());
    // Evenly spread over the index (which is in class order), so every class is represented
    // without listing a million paths.
    const qsizetype take = limit > 0 ? std::min<qsizetype>(limit, count) : count;
    paths.reserve(take);
    for (qsizetype i = 0; i < take; ++i)
        paths.append(m_statsIndex->absolutePath(m_statsIndex->samples[size_t(i * count / take)]));
    return paths;
}

void TransformsWorkspace::onTraitsReady()
{
    for (PipelineEditor *editor : {m_train, m_val})
        editor->setDatasetHints(m_traits.typicalSize, m_traits.gray);
    if (!m_pipelinesLoaded) {
        const PipelinePair defaults = defaultPipelines(m_traits);
        setPipelines(itemsFromPipeline(defaults.train), itemsFromPipeline(defaults.val));
        const QSize t = m_traits.typicalSize;
        if (isVisible()) // not over what the Datasets workspace says
            Q_EMIT statusMessage(!t.isValid()
                                     ? tr("Suggested pipelines shown; edit them or import yours")
                                     : m_traits.uniformSize
                                     ? tr("Suggested pipelines for %1 × %2 images; edit them or "
                                          "import yours")
                                           .arg(t.width())
                                           .arg(t.height())
                                     : tr("Suggested pipelines for images of several sizes (most "
                                          "often %1 × %2); edit them or import yours")
                                           .arg(t.width())
                                           .arg(t.height()));
        return;
    }
    refreshAdvice();
}

void TransformsWorkspace::loadPipelines()
{
    const Settings::PipelineSources saved = m_settings->transformPipelines(m_root);
    if (saved.isEmpty())
        return; // defaults once the traits are known
    const Result<PipelineItems> train = pipelineItemsFromSource(saved.train);
    const Result<PipelineItems> val = pipelineItemsFromSource(saved.val);
    if (!train || !val) {
        m_banner->showMessage(WarningBanner::Level::Warning,
                              tr("The pipelines saved for this dataset could not be read, so the "
                                 "suggested ones are shown: %1")
                                  .arg(train ? val.errorMessage() : train.errorMessage()));
        return;
    }
    setPipelines(train.value(), val.value());
    // Keep the user's own text (comments, layout) in the code views.
    m_applying = true;
    if (saved.train != m_train->code())
        m_train->setCode(saved.train);
    if (saved.val != m_val->code())
        m_val->setCode(saved.val);
    m_applying = false;
}

void TransformsWorkspace::setPipelines(const PipelineItems &train, const PipelineItems &val)
{
    m_applying = true;
    m_train->setItems(train);
    m_val->setItems(val);
    m_applying = false;
    // A step's form on show from the start says what the form is for.
    for (PipelineEditor *editor : {m_train, m_val})
        if (editor->selectedRow() < 0 && editor->model()->rowCount() > 0)
            editor->selectStep(0);
    const bool first = !m_pipelinesLoaded;
    m_pipelinesLoaded = true;
    refreshAdvice();
    schedulePreview();
    if (first)
        Q_EMIT pipelinesReady();
}

void TransformsWorkspace::onPipelineChanged()
{
    if (!m_pipelinesLoaded)
        return;
    refreshAdvice();
    schedulePreview();
    if (!m_applying)
        m_saveTimer.start();
}

void TransformsWorkspace::savePipelines()
{
    if (m_root.isEmpty() || !m_pipelinesLoaded)
        return;
    m_settings->setTransformPipelines(m_root, {m_train->sourceToSave(), m_val->sourceToSave()});
}

void TransformsWorkspace::refreshAdvice()
{
    m_trainAdvice = reviewPipeline(m_train->pipeline(), PipelineRole::Train, m_traits);
    m_valAdvice = reviewPipeline(m_val->pipeline(), PipelineRole::Val, m_traits);
    m_train->setAdvice(m_trainAdvice);
    m_val->setAdvice(m_valAdvice);
    m_advice->setAdvice(m_trainAdvice, m_valAdvice);
    updateTabIcons();
}

void TransformsWorkspace::updateTabIcons()
{
    const QList<QPair<PipelineEditor *, const QList<PipelineAdvice> *>> tabs{
        {m_train, &m_trainAdvice}, {m_val, &m_valAdvice}};
    for (const auto &[editor, advice] : tabs) {
        int worst = editor->codeError().isEmpty() ? -1 : 2;
        for (const PipelineAdvice &a : *advice)
            worst = std::max(worst, int(a.severity));
        QIcon icon;
        if (worst == 2)
            icon = style()->standardIcon(QStyle::SP_MessageBoxCritical);
        else if (worst == 1)
            icon = style()->standardIcon(QStyle::SP_MessageBoxWarning);
        m_tabs->setTabIcon(m_tabs->indexOf(editor), icon);
    }
}

// ---- Preview ---------------------------------------------------------------------------------

void TransformsWorkspace::showSample(const IndexPtr &index, int row)
{
    if (!index || row < 0 || row >= int(index->samples.size()))
        return;
    m_index = index;
    setSampleRow(row);
}

void TransformsWorkspace::setSampleRow(int row)
{
    if (!m_index || m_index->samples.empty())
        return;
    const int count = int(m_index->samples.size());
    m_sampleRow = ((row % count) + count) % count;
    updateImageLabel();
    requestPreview();
}

void TransformsWorkspace::showPreviousImage()
{
    setSampleRow(m_sampleRow - 1);
}

void TransformsWorkspace::showNextImage()
{
    setSampleRow(m_sampleRow + 1);
}

void TransformsWorkspace::showRandomImage()
{
    if (!m_index || m_index->samples.empty())
        return;
    const int count = int(m_index->samples.size());
    int row = int(QRandomGenerator::global()->bounded(count));
    if (count > 1 && row == m_sampleRow)
        row = (row + 1) % count;
    setSampleRow(row);
}

QString TransformsWorkspace::currentImagePath() const
{
    if (!m_index || m_sampleRow < 0 || m_sampleRow >= int(m_index->samples.size()))
        return {};
    return m_index->absolutePath(m_index->samples[size_t(m_sampleRow)]);
}

void TransformsWorkspace::updateImageLabel()
{
    const bool has = m_index && m_sampleRow >= 0;
    for (QToolButton *button : {m_previousButton, m_nextButton, m_randomButton})
        button->setEnabled(has && m_index->samples.size() > 1);
    if (!has) {
        m_imageLabel->setText(tr("No image"));
        return;
    }
    const Sample &sample = m_index->samples[size_t(m_sampleRow)];
    const QLocale locale;
    m_imageLabel->setText(tr("<b>%1</b> · %2 of %3")
                              .arg(sample.displayPath().toHtmlEscaped(),
                                   locale.toString(m_sampleRow + 1),
                                   locale.toString(qlonglong(m_index->samples.size()))));
    const QString className = sample.classIndex >= 0 && sample.classIndex < m_index->classCount()
        ? m_index->classes[sample.classIndex]
        : QString();
    m_imageLabel->setToolTip(
        tr("%1\nclass “%2” (index %3)").arg(currentImagePath(), className).arg(sample.classIndex));
}

void TransformsWorkspace::setSeed(quint64 seed)
{
    seed = std::min<quint64>(seed, INT_MAX);
    if (seed != quint64(m_seedSpin->value())) {
        QSignalBlocker blocker(m_seedSpin);
        m_seedSpin->setValue(int(seed));
    }
    m_seed = seed;
    m_settings->setPreviewSeed(seed);
    requestPreview();
}

void TransformsWorkspace::reseed()
{
    quint64 seed = m_seed;
    while (seed == m_seed)
        seed = QRandomGenerator::global()->bounded(1000000u);
    setSeed(seed);
}

int TransformsWorkspace::draws() const
{
    return m_drawsSpin->value();
}

void TransformsWorkspace::setDraws(int draws)
{
    draws = std::clamp(draws, 1, 32);
    if (m_drawsSpin->value() != draws) {
        QSignalBlocker blocker(m_drawsSpin);
        m_drawsSpin->setValue(draws);
    }
    m_settings->setPreviewDraws(draws);
    m_traceDraw = std::min(m_traceDraw, draws - 1);
    requestPreview();
}

void TransformsWorkspace::schedulePreview()
{
    // What is in flight shows the old state: drop it rather than show it for a moment.
    m_previewJob->cancel();
    m_previewId = 0;
    m_previewTimer.start();
}

void TransformsWorkspace::requestPreview()
{
    m_previewTimer.stop();
    if (!m_pipelinesLoaded || currentImagePath().isEmpty())
        return;
    if (!isVisible()) {
        m_previewPending = true; // runs when the workspace is shown
        return;
    }
    m_previewPending = false;
    PreviewRequest request;
    request.path = currentImagePath();
    if (request.path == m_loadedPath)
        request.image = m_loadedImage;
    request.train = m_train->pipeline();
    request.val = m_val->pipeline();
    request.seed = m_seed;
    request.draws = draws();
    request.traceDraw = std::min(m_traceDraw, request.draws - 1);
    m_previewId = m_previewJob->request(request);
    m_preview->setBusy(true);
}

void TransformsWorkspace::showEvent(QShowEvent *event)
{
    QWidget::showEvent(event);
    if (m_previewPending)
        schedulePreview();
}

void TransformsWorkspace::onPreviewFinished(const PreviewResult &result)
{
    if (result.id != m_previewId)
        return;
    m_loadedPath = result.path;
    m_loadedImage = result.original;
    m_preview->setBusy(false);
    m_preview->setResult(result);
    Q_EMIT previewUpdated();
}

void TransformsWorkspace::onPreviewFailed(quint64 id, const QString &message)
{
    if (id != m_previewId)
        return;
    m_loadedPath.clear();
    m_loadedImage = QImage();
    m_preview->setBusy(false);
    m_preview->setFailure(message);
    Q_EMIT previewUpdated();
}

const PreviewResult &TransformsWorkspace::lastPreview() const
{
    return m_preview->result();
}

// ---- Defaults, Python files, statistics ------------------------------------------------------

void TransformsWorkspace::resetToDefaults(bool ask)
{
    if (!hasDataset())
        return;
    const PipelinePair defaults = defaultPipelines(m_traits);
    const PipelineItems train = itemsFromPipeline(defaults.train);
    const PipelineItems val = itemsFromPipeline(defaults.val);
    if (train == m_train->items() && val == m_val->items())
        return;
    if (ask
        && QMessageBox::question(this, tr("Reset to Defaults"),
                                 tr("Replace both pipelines with the ones suggested for this "
                                    "dataset? Your edits are lost (Ctrl+Z in the code view "
                                    "brings them back)."),
                                 QMessageBox::Reset | QMessageBox::Cancel, QMessageBox::Cancel)
            != QMessageBox::Reset)
        return;
    m_train->setItems(train);
    m_val->setItems(val);
    m_saveTimer.stop();
    m_settings->removeTransformPipelines(m_root);
    Q_EMIT statusMessage(tr("Pipelines reset to the suggested ones"));
}

Status TransformsWorkspace::exportPython(const QString &path) const
{
    QString text
        = pipelinesToPython(m_train->pipeline(), m_val->pipeline(), QFileInfo(m_root).fileName());
    // Disabled steps travel as commented-out lines, which import brings back.
    const QList<QPair<QString, const PipelineEditor *>> pipelines{
        {QStringLiteral("train_transform = "), m_train},
        {QStringLiteral("val_transform = "), m_val}};
    for (const auto &[variable, editor] : pipelines) {
        const QString plain = variable + toTorchvisionSource(editor->pipeline());
        const qsizetype at = text.indexOf(plain);
        if (at >= 0)
            text.replace(at, plain.size(), variable + pipelineItemsToSource(editor->items()));
    }
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return Error{tr("Cannot write “%1”: %2").arg(path, file.errorString())};
    file.write(text.toUtf8());
    if (!file.commit())
        return Error{tr("Cannot write “%1”: %2").arg(path, file.errorString())};
    return success();
}

PipelineItems TransformsWorkspace::itemsOfImport(const NamedPipeline &found) const
{
    // The expression as written keeps commented-out steps, which become disabled ones.
    const Result<PipelineItems> items = pipelineItemsFromSource(found.expression);
    if (items && enabledPipeline(items.value()) == found.pipeline)
        return items.value();
    return itemsFromPipeline(found.pipeline);
}

Status TransformsWorkspace::importPython(const QString &path, bool interactive)
{
    if (!hasDataset())
        return Error{tr("Open a dataset first: pipelines are kept per dataset")};
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{tr("Cannot read “%1”: %2").arg(path, file.errorString())};
    const QString source = QString::fromUtf8(file.readAll());
    const Result<QList<NamedPipeline>> found = pipelinesFromPython(source);
    if (!found)
        return Error{
            tr("Cannot import “%1”: %2").arg(QFileInfo(path).fileName(), found.errorMessage())};
    const QList<NamedPipeline> &pipelines = found.value();

    QList<int> trainMatches, valMatches;
    for (int i = 0; i < pipelines.size(); ++i) {
        if (looksLikeTrain(pipelines[i].name))
            trainMatches.append(i);
        else if (looksLikeVal(pipelines[i].name))
            valMatches.append(i);
    }
    int train = trainMatches.size() == 1 ? trainMatches.constFirst() : -1;
    int val = valMatches.size() == 1 ? valMatches.constFirst() : -1;
    const bool clear = train >= 0 && val >= 0 && int(pipelines.size()) == 2;
    const bool clearEnough = train >= 0 && val >= 0;
    if (!clear && !(clearEnough && !interactive)) {
        if (!interactive) {
            QStringList names;
            for (const NamedPipeline &p : pipelines)
                names.append(QStringLiteral("“%1” (line %2)").arg(p.name).arg(p.line));
            return Error{tr("Cannot tell the train and val pipelines apart in “%1”: %2. Name them "
                            "train_transform and val_transform.")
                             .arg(QFileInfo(path).fileName(), names.join(QStringLiteral(", ")))};
        }
        // Ask: one combo per pipeline, each offering every assignment or keeping what is there.
        QDialog dialog(this);
        dialog.setWindowTitle(tr("Import Pipelines"));
        auto *trainCombo = new QComboBox(&dialog);
        auto *valCombo = new QComboBox(&dialog);
        for (QComboBox *combo : {trainCombo, valCombo}) {
            combo->addItem(tr("(keep the current one)"), -1);
            for (int i = 0; i < pipelines.size(); ++i)
                combo->addItem(
                    tr("%1 (line %2, %n step(s))", nullptr, int(pipelines[i].pipeline.steps.size()))
                        .arg(pipelines[i].name)
                        .arg(pipelines[i].line),
                    i);
        }
        trainCombo->setCurrentIndex(train >= 0 ? train + 1 : 1);
        valCombo->setCurrentIndex(val >= 0 ? val + 1 : (pipelines.size() > 1 ? 2 : 0));
        auto *form = new QFormLayout;
        form->addRow(tr("Train pipeline:"), trainCombo);
        form->addRow(tr("Val pipeline:"), valCombo);
        auto *note = new QLabel(
            tr("“%1” assigns %n pipeline(s). Which is which?", nullptr, int(pipelines.size()))
                .arg(QFileInfo(path).fileName()),
            &dialog);
        note->setWordWrap(true);
        auto *buttons
            = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
        connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
        connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
        auto *layout = new QVBoxLayout(&dialog);
        layout->addWidget(note);
        layout->addLayout(form);
        layout->addWidget(buttons);
        if (dialog.exec() != QDialog::Accepted)
            return Error{QString(), ErrorCode::Cancelled}; // nothing to report
        train = trainCombo->currentData().toInt();
        val = valCombo->currentData().toInt();
    }
    if (train >= 0)
        m_train->setItems(itemsOfImport(pipelines[train]));
    if (val >= 0)
        m_val->setItems(itemsOfImport(pipelines[val]));
    QStringList done;
    if (train >= 0)
        done.append(tr("train from %1").arg(pipelines[train].name));
    if (val >= 0)
        done.append(tr("val from %1").arg(pipelines[val].name));
    Q_EMIT statusMessage(
        tr("Imported %1 (%2)").arg(done.join(QStringLiteral(", ")), QFileInfo(path).fileName()));
    return success();
}

void TransformsWorkspace::exportPythonInteractive()
{
    if (!hasDataset())
        return;
    const QString suggested = QDir(m_root).filePath(QStringLiteral("transforms.py"));
    const QString path = QFileDialog::getSaveFileName(this, tr("Export Pipelines as Python"),
                                                      suggested, tr("Python (*.py)"));
    if (path.isEmpty())
        return;
    const Status saved = exportPython(path);
    if (!saved) {
        QMessageBox::warning(this, tr("Export Python"), saved.errorMessage());
        return;
    }
    Q_EMIT statusMessage(tr("Saved train_transform and val_transform to %1").arg(path));
}

void TransformsWorkspace::importPythonInteractive()
{
    if (!hasDataset())
        return;
    const QString path = QFileDialog::getOpenFileName(this, tr("Import Pipelines from Python"),
                                                      m_root, tr("Python (*.py);;All files (*)"));
    if (path.isEmpty())
        return;
    const Status imported = importPython(path, true);
    if (!imported && !imported.isCancellation())
        m_banner->showMessage(WarningBanner::Level::Error, imported.errorMessage());
}

void TransformsWorkspace::applyNormalize(const std::vector<double> &mean,
                                         const std::vector<double> &std)
{
    m_train->setPipeline(withNormalize(m_train->pipeline(), mean, std));
    m_val->setPipeline(withNormalize(m_val->pipeline(), mean, std));
    Q_EMIT statusMessage(
        tr("Normalize uses mean %1 and std %2 in both pipelines").arg(joined(mean), joined(std)));
}

void TransformsWorkspace::computeMeanStdInteractive()
{
    const QStringList paths = statisticsPaths(50 * kStatsImages);
    if (paths.isEmpty() || m_statsJob->isRunning())
        return;
    const int sample = std::min<int>(kStatsImages, int(paths.size()));
    auto *dialog = new QProgressDialog(
        tr("Reading %n image(s) of the dataset as ToTensor sees them…", nullptr, sample),
        tr("Cancel"), 0, sample, this);
    dialog->setObjectName(QStringLiteral("statsProgress"));
    dialog->setWindowTitle(tr("Mean and Std"));
    dialog->setWindowModality(Qt::WindowModal);
    dialog->setMinimumDuration(300);
    dialog->setAutoClose(false);
    dialog->setAutoReset(false);
    dialog->setValue(0);
    connect(dialog, &QProgressDialog::canceled, m_statsJob, &DatasetStatsJob::requestCancel);
    connect(m_statsJob, &DatasetStatsJob::progressChanged, dialog, [dialog](int done, int total) {
        dialog->setMaximum(total);
        dialog->setValue(done);
    });
    connect(m_statsJob, &DatasetStatsJob::cancelled, dialog, [this, dialog] {
        dialog->deleteLater();
        Q_EMIT statusMessage(tr("Mean and std: cancelled"));
    });
    connect(m_statsJob, &DatasetStatsJob::failed, dialog, [this, dialog](const QString &message) {
        dialog->deleteLater();
        m_banner->showMessage(WarningBanner::Level::Error,
                              tr("The mean and std could not be computed: %1").arg(message));
    });
    connect(m_statsJob, &DatasetStatsJob::finished, dialog,
            [this, dialog](const DatasetChannelStats &stats) {
                dialog->deleteLater();
                std::vector<double> mean = stats.mean;
                std::vector<double> std = stats.std;
                // Gray images read as RGB give three equal channels: one value says it plainly.
                const bool equal = mean.size() == 3 && std::abs(mean[0] - mean[1]) < 1e-9
                    && std::abs(mean[0] - mean[2]) < 1e-9 && std::abs(std[0] - std[1]) < 1e-9
                    && std::abs(std[0] - std[2]) < 1e-9;
                if (equal) {
                    mean.resize(1);
                    std.resize(1);
                }
                QString text = tr("Over %n image(s) of the dataset:", nullptr, stats.images)
                    + QStringLiteral("\n\nmean = %1\nstd  = %2").arg(joined(mean), joined(std));
                if (stats.failed > 0)
                    text += tr("\n\n%n image(s) could not be read and were skipped.", nullptr,
                               stats.failed);
                text += tr("\n\nPut these values into Normalize of both pipelines?");
                QMessageBox box(QMessageBox::Question, tr("Mean and Std"), text,
                                QMessageBox::Yes | QMessageBox::No, this);
                box.setObjectName(QStringLiteral("statsResultBox"));
                box.setDefaultButton(QMessageBox::Yes);
                if (box.exec() == QMessageBox::Yes)
                    applyNormalize(mean, std);
                else
                    Q_EMIT statusMessage(
                        tr("mean %1, std %2 (not applied)").arg(joined(mean), joined(std)));
            });
    m_statsJob->start(paths, kStatsImages, m_seed, m_settings->computeThreads());
}

void TransformsWorkspace::showBatch()
{
    if (!m_batchView)
        m_batchView = new BatchView(this);
    m_batchView->showBatch(m_statsIndex, m_train->pipeline(), m_seed);
    m_batchView->show();
    m_batchView->raise();
}

} // namespace ifs
