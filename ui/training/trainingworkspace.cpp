#include "training/trainingworkspace.h"

#include "base/cpufeatures.h"
#include "base/settings.h"
#include "checkpoint/checkpointfiles.h"
#include "common/batchview.h"
#include "common/emptystatepage.h"
#include "common/icons.h"
#include "common/warningbanner.h"
#include "torch/runtime.h"
#include "training/curvechart.h"
#include "training/evaluationview.h"
#include "training/exportdialog.h"
#include "training/lrfinderdialog.h"
#include "training/mislabelview.h"
#include "training/models.h"
#include "training/predictpanel.h"
#include "training/pretrained.h"
#include "training/resumedialog.h"
#include "training/trainingdata.h"
#include "training/trainingjobs.h"

#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDateTime>
#include <QDesktopServices>
#include <QDir>
#include <QDoubleSpinBox>
#include <QDoubleValidator>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMenu>
#include <QPainter>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTabWidget>
#include <QThread>
#include <QTime>
#include <QToolButton>
#include <QUrl>
#include <QVBoxLayout>

#include <climits>
#include <cmath>

namespace ifs {

namespace {

const QColor kTrainColor(0x4c, 0x9b, 0xe8);
const QColor kTrainDark(0x1f, 0x5f, 0xa8);
const QColor kValColor(0xe7, 0x6f, 0x24);
const QColor kLrColor(0x2a, 0x9d, 0x8f);
const QColor kSpeedColor(0x8e, 0x6f, 0xd8);
const QList<QColor> kOverlayColors{QColor(0x6c, 0x75, 0x7d), QColor(0xb5, 0x83, 0x8d),
                                   QColor(0x6d, 0x59, 0x7a), QColor(0x9a, 0x8c, 0x2f),
                                   QColor(0x35, 0x7a, 0x5b)};

const QString kCheckpointFilter = ckpt::checkpointNameFilter();

QString durationText(double seconds)
{
    if (!(seconds >= 0.0) || !std::isfinite(seconds))
        return QObject::tr("–");
    const qint64 s = std::llround(seconds);
    if (s < 60)
        return QObject::tr("%1 s").arg(s);
    if (s < 3600)
        return QObject::tr("%1 min %2 s").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
    return QObject::tr("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60, 2, 10, QLatin1Char('0'));
}

QString percentText(double fraction)
{
    return QString::number(100.0 * fraction, 'f', 2) + u'%';
}

QString parametersText(qint64 parameters)
{
    if (parameters >= 1000000)
        return QObject::tr("%1 M parameters").arg(parameters / 1e6, 0, 'f', 1);
    if (parameters >= 1000)
        return QObject::tr("%1 k parameters").arg(parameters / 1e3, 0, 'f', 0);
    return QObject::tr("%1 parameters").arg(parameters);
}

/// A line edit for numbers such as 3e-4 (a spin box cannot take those).
QLineEdit *numberEdit(double min, double max, QWidget *parent)
{
    auto *edit = new QLineEdit(parent);
    auto *validator = new QDoubleValidator(min, max, 12, edit);
    validator->setNotation(QDoubleValidator::ScientificNotation);
    validator->setLocale(QLocale::c());
    edit->setValidator(validator);
    edit->setMaximumWidth(120);
    return edit;
}

double numberOf(const QLineEdit *edit, double fallback)
{
    bool ok = false;
    const double value = edit->text().trimmed().toDouble(&ok);
    return ok ? value : fallback;
}

QString numberText(double value)
{
    return QString::number(value, 'g', 6);
}

QDoubleSpinBox *doubleSpin(double min, double max, double step, int decimals, QWidget *parent)
{
    auto *spin = new QDoubleSpinBox(parent);
    spin->setRange(min, max);
    spin->setSingleStep(step);
    spin->setDecimals(decimals);
    return spin;
}

QPlainTextEdit *codeView(QWidget *parent)
{
    auto *view = new QPlainTextEdit(parent);
    view->setReadOnly(true);
    QFont mono = QFontDatabase::systemFont(QFontDatabase::FixedFont);
    mono.setPointSizeF(mono.pointSizeF() * 0.9);
    view->setFont(mono);
    view->setLineWrapMode(QPlainTextEdit::NoWrap);
    view->setFixedHeight(QFontMetrics(mono).lineSpacing() * 5 + 12);
    return view;
}

QLabel *mutedLabel(const QString &text, QWidget *parent)
{
    auto *label = new QLabel(text, parent);
    label->setWordWrap(true);
    QPalette palette = label->palette();
    palette.setColor(QPalette::WindowText, palette.color(QPalette::PlaceholderText));
    label->setPalette(palette);
    return label;
}

void setRowVisible(QFormLayout *form, QWidget *field, bool visible)
{
    // QFormLayout::setRowVisible is Qt 6.4; hide the label and the field ourselves.
    if (QWidget *label = form->labelForField(field))
        label->setVisible(visible);
    field->setVisible(visible);
}

} // namespace

QIcon trainingIcon()
{
    return themedIcon(QStringLiteral("ifs-training"));
}

TrainingWorkspace::TrainingWorkspace(Settings *settings, QWidget *parent)
    : QWidget(parent)
    , m_settings(settings)
    , m_job(new TrainingJob(this))
    , m_pages(new QStackedWidget(this))
{
    setObjectName(QStringLiteral("trainingWorkspace"));
    m_pages->addWidget(buildEmptyPage());
    m_pages->addWidget(buildWorkspacePage());
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_pages);

    connect(m_job, &TrainingJob::started, this, &TrainingWorkspace::onStarted);
    connect(m_job, &TrainingJob::stepsReady, this, &TrainingWorkspace::onSteps);
    connect(m_job, &TrainingJob::epochFinished, this, &TrainingWorkspace::onEpoch);
    connect(m_job, &TrainingJob::finished, this, &TrainingWorkspace::onFinished);
    connect(m_job, &TrainingJob::statusChanged, this, [this](const QString &text) {
        m_statusLabel->setText(text);
        m_transientStatus = true; // "Evaluating…": until the next steps arrive
    });
    // The settings of the last run, without what belongs to that run.
    TrainConfig initial;
    if (m_settings) {
        const QJsonObject form = m_settings->trainingForm();
        if (Result<TrainConfig> stored = TrainConfig::fromJson(form); stored.ok())
            initial = stored.value();
        // Forms saved before mixed precision worked on the CPU say "off" only because the
        // control was disabled there: they get the new default.
        if (!form.contains(QStringLiteral("finetune")))
            initial.amp = AmpMode::Auto;
    }
    initial.dataRoot.clear();
    initial.valRoot.clear();
    initial.outDir.clear();
    initial.resumePath.clear();
    initial.resumeWeightsOnly = false;
    initial.trainTransforms.clear();
    initial.valTransforms.clear();
    setConfig(initial);
    // The held-out images follow the split and the seed.
    auto followSplit = [this] {
        if (!isRunning() && hasDataset() && !hasValFolder())
            updateValidationSource();
    };
    connect(m_valSplitSpin, &QDoubleSpinBox::valueChanged, this, followSplit);
    connect(m_seed, &QSpinBox::valueChanged, this, followSplit);
    updateControls();
}

TrainingWorkspace::~TrainingWorkspace() = default;

QWidget *TrainingWorkspace::buildEmptyPage()
{
    auto *page = new EmptyStatePage(
        QStringLiteral("ifs-training"), tr("Training needs a dataset"),
        tr("Open a dataset to train a classifier on it: pick a model and its settings, watch the "
           "loss and accuracy as it learns, see what it confuses after every epoch, and keep "
           "checkpoints that load in PyTorch as they are."),
        this);
    page->setObjectName(QStringLiteral("trainingEmptyPage"));
    page->openButton()->setObjectName(QStringLiteral("trainingOpenButton"));
    page->sampleButton()->setObjectName(QStringLiteral("trainingSampleButton"));
    connect(page, &EmptyStatePage::openFolderRequested, this,
            &TrainingWorkspace::openFolderRequested);
    connect(page, &EmptyStatePage::openSampleRequested, this,
            &TrainingWorkspace::openSampleRequested);
    return page;
}

QWidget *TrainingWorkspace::buildWorkspacePage()
{
    auto *page = new QWidget(this);

    QHBoxLayout *header = buildHeader(page);
    m_banner = new WarningBanner(page);

    QFrame *runBox = buildRunBox(page);

    // Left: the settings. Right: curves, evaluation, prediction, log.
    m_form = buildForm();
    m_formScroll = new QScrollArea(page);
    m_formScroll->setObjectName(QStringLiteral("trainingSettings"));
    m_formScroll->setWidget(m_form);
    m_formScroll->setWidgetResizable(true);
    m_formScroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    m_formScroll->setMinimumWidth(m_form->minimumSizeHint().width() + 24);

    m_evaluation = new EvaluationView(page);
    m_predict = new PredictPanel(page);
    m_mislabel = new MislabelView(page);
    m_log = new QPlainTextEdit(page);
    m_log->setObjectName(QStringLiteral("runLog"));
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(10000);
    m_tabs = new QTabWidget(page);
    m_tabs->setObjectName(QStringLiteral("trainingTabs"));
    m_tabs->setDocumentMode(true);
    m_tabs->addTab(buildCurves(), tr("Curves"));
    m_tabs->addTab(m_evaluation, tr("Evaluation"));
    m_tabs->addTab(m_predict, tr("Predict"));
    m_tabs->addTab(m_mislabel, tr("Likely Mislabelled"));
    m_tabs->addTab(m_log, tr("Run Log"));
    connect(m_evaluation, &EvaluationView::statusMessage, this, &TrainingWorkspace::statusMessage);

    auto *right = new QWidget(page);
    auto *rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    rightLayout->addWidget(runBox);
    rightLayout->addWidget(m_tabs, 1);

    m_splitter = new QSplitter(Qt::Horizontal, page);
    m_splitter->setObjectName(QStringLiteral("trainingSplitter"));
    m_splitter->addWidget(m_formScroll);
    m_splitter->addWidget(right);
    m_splitter->setStretchFactor(0, 0);
    m_splitter->setStretchFactor(1, 1);
    m_splitter->setChildrenCollapsible(false);
    right->setMinimumWidth(480);
    m_splitter->setSizes({m_formScroll->minimumWidth(), 1000});
    if (m_settings) {
        if (const QByteArray state = m_settings->splitterState(QStringLiteral("training"));
            !state.isEmpty())
            m_splitter->restoreState(state);
    }

    auto *layout = new QVBoxLayout(page);
    layout->setContentsMargins(10, 8, 10, 4);
    layout->addLayout(header);
    layout->addWidget(m_banner);
    layout->addWidget(m_splitter, 1);
    return page;
}

QHBoxLayout *TrainingWorkspace::buildHeader(QWidget *page)
{
    m_title = new QLabel(page);
    m_title->setObjectName(QStringLiteral("trainingTitle"));
    QFont titleFont = m_title->font();
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.35);
    titleFont.setBold(true);
    m_title->setFont(titleFont);
    m_startButton = new QPushButton(tr("Start"), page);
    m_startButton->setObjectName(QStringLiteral("startButton"));
    m_startButton->setToolTip(tr("Train with these settings in a new run folder"));
    m_startButton->setDefault(true);
    m_pauseButton = new QPushButton(tr("Pause"), page);
    m_pauseButton->setObjectName(QStringLiteral("pauseButton"));
    m_pauseButton->setToolTip(tr("Hold the run after the current batch"));
    m_stopButton = new QPushButton(tr("Stop"), page);
    m_stopButton->setObjectName(QStringLiteral("stopButton"));
    m_stopButton->setToolTip(tr("End the run after the current batch; last.pth stays as the "
                                "last complete epoch left it"));
    m_saveStopButton = new QPushButton(tr("Save and Stop"), page);
    m_saveStopButton->setObjectName(QStringLiteral("saveStopButton"));
    m_saveStopButton->setToolTip(tr("Write last.pth with the exact position inside the epoch, "
                                    "then stop: Resume continues from the next batch"));
    m_resumeButton = new QPushButton(tr("Resume from Checkpoint…"), page);
    m_resumeButton->setObjectName(QStringLiteral("resumeButton"));
    m_resumeButton->setToolTip(tr("Continue an earlier run exactly, or start from its weights"));
    connect(m_startButton, &QPushButton::clicked, this, [this] { startRun(); });
    connect(m_pauseButton, &QPushButton::clicked, this, &TrainingWorkspace::togglePause);
    connect(m_stopButton, &QPushButton::clicked, this, [this] { stopRun(false); });
    connect(m_saveStopButton, &QPushButton::clicked, this, [this] { stopRun(true); });
    connect(m_resumeButton, &QPushButton::clicked, this, &TrainingWorkspace::resumeInteractive);
    m_exportButton = new QPushButton(tr("Export…"), page);
    m_exportButton->setObjectName(QStringLiteral("exportButton"));
    m_exportButton->setToolTip(tr("Export the run's best checkpoint as TorchScript or ONNX"));
    m_exportButton->setEnabled(false);
    connect(m_exportButton, &QPushButton::clicked, this, &TrainingWorkspace::openExportDialog);
    auto *header = new QHBoxLayout;
    header->addWidget(m_title, 1);
    header->addWidget(m_startButton);
    header->addWidget(m_pauseButton);
    header->addWidget(m_stopButton);
    header->addWidget(m_saveStopButton);
    header->addSpacing(8);
    header->addWidget(m_resumeButton);
    header->addWidget(m_exportButton);
    return header;
}

QFrame *TrainingWorkspace::buildRunBox(QWidget *page)
{
    m_deviceLabel = new QLabel(page);
    m_deviceLabel->setObjectName(QStringLiteral("deviceLabel"));
    m_deviceLabel->setTextFormat(Qt::RichText);
    QFont deviceFont = m_deviceLabel->font();
    deviceFont.setPointSizeF(deviceFont.pointSizeF() * 1.15);
    m_deviceLabel->setFont(deviceFont);
    m_deviceNote = mutedLabel(QString(), page);
    m_deviceNote->setObjectName(QStringLiteral("deviceNote"));
    m_deviceNote->setWordWrap(false);
    m_deviceNote->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_progress = new QProgressBar(page);
    m_progress->setObjectName(QStringLiteral("trainingProgress"));
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_progress->setTextVisible(false);
    m_progress->setMaximumHeight(10);
    m_progressLabel = new QLabel(page);
    m_progressLabel->setObjectName(QStringLiteral("progressLabel"));
    m_statusLabel = mutedLabel(QString(), page);
    m_statusLabel->setObjectName(QStringLiteral("trainingStatus"));
    m_statusLabel->setWordWrap(false);
    m_statusLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    auto *runBox = new QFrame(page);
    runBox->setObjectName(QStringLiteral("runBox"));
    runBox->setFrameShape(QFrame::StyledPanel);
    auto *deviceRow = new QHBoxLayout;
    deviceRow->addWidget(m_deviceLabel);
    deviceRow->addSpacing(10);
    deviceRow->addWidget(m_deviceNote, 1);
    m_openFolderButton = new QToolButton(page);
    m_openFolderButton->setObjectName(QStringLiteral("openRunFolderButton"));
    m_openFolderButton->setText(tr("Open Run Folder"));
    m_openFolderButton->setAutoRaise(true);
    m_openFolderButton->setEnabled(false);
    m_openFolderButton->setToolTip(tr("The run's checkpoints, metrics.csv, steps.csv, config.json "
                                      "and load_model.py"));
    connect(m_openFolderButton, &QToolButton::clicked, this,
            [this] { QDesktopServices::openUrl(QUrl::fromLocalFile(m_runFolder)); });
    auto *progressRow = new QHBoxLayout;
    progressRow->addWidget(m_progressLabel);
    progressRow->addSpacing(10);
    progressRow->addWidget(m_statusLabel, 1);
    progressRow->addWidget(m_openFolderButton);
    auto *runLayout = new QVBoxLayout(runBox);
    runLayout->setContentsMargins(10, 6, 10, 6);
    runLayout->setSpacing(4);
    runLayout->addLayout(deviceRow);
    runLayout->addWidget(m_progress);
    runLayout->addLayout(progressRow);
    return runBox;
}

QWidget *TrainingWorkspace::buildForm()
{
    auto *form = new QWidget(this);

    QGroupBox *modelBox = buildModelBox(form);
    QGroupBox *dataBox = buildDataBox(form);
    QGroupBox *optimBox = buildOptimisationBox(form);
    QGroupBox *scheduleBox = buildScheduleBox(form);
    QGroupBox *balanceBox = buildBalanceBox(form);
    QGroupBox *deviceBox = buildDeviceBox(form);
    QGroupBox *outputBox = buildOutputBox(form);

    auto *layout = new QVBoxLayout(form);
    layout->setContentsMargins(0, 0, 6, 0);
    for (QGroupBox *box :
         {modelBox, dataBox, optimBox, scheduleBox, balanceBox, deviceBox, outputBox})
        layout->addWidget(box);
    layout->addStretch(1);
    form->setMinimumWidth(330);
    return form;
}

QGroupBox *TrainingWorkspace::buildModelBox(QWidget *form)
{
    auto *modelBox = new QGroupBox(tr("Model"), form);
    m_model = new QComboBox(modelBox);
    m_model->setObjectName(QStringLiteral("modelCombo"));
    for (const ModelArch &arch : modelArchitectures()) {
        m_model->addItem(arch.title, arch.name);
        m_model->setItemData(m_model->count() - 1, arch.description, Qt::ToolTipRole);
    }
    m_modelDescription = mutedLabel(QString(), modelBox);
    m_modelDescription->setObjectName(QStringLiteral("modelDescription"));
    m_weights = new QLineEdit(modelBox);
    m_weights->setObjectName(QStringLiteral("weightsEdit"));
    m_weights->setPlaceholderText(tr("random initialisation"));
    m_weights->setClearButtonEnabled(true);
    m_weights->setToolTip(tr("Start from these weights (a state dict or a checkpoint); a head of "
                             "another class count is re-initialised"));
    auto *weightsBrowse = new QToolButton(modelBox);
    weightsBrowse->setText(QStringLiteral("…"));
    weightsBrowse->setToolTip(tr("Choose a weights file"));
    connect(weightsBrowse, &QToolButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(
            this, tr("Start from Weights"),
            m_settings ? m_settings->lastCheckpointFolder() : QString(),
            tr("Checkpoints (%1);;All files (*)").arg(kCheckpointFilter));
        if (!path.isEmpty())
            m_weights->setText(QDir::toNativeSeparators(path));
    });
    m_weightsRow = new QWidget(modelBox);
    auto *weightsRow = new QHBoxLayout(m_weightsRow);
    weightsRow->setContentsMargins(0, 0, 0, 0);
    weightsRow->addWidget(m_weights, 1);
    weightsRow->addWidget(weightsBrowse);
    m_startFrom = new QComboBox(modelBox);
    m_startFrom->setObjectName(QStringLiteral("startFromCombo"));
    m_startFrom->addItem(tr("Random initialisation"), QString());
    m_startFrom->addItem(tr("ImageNet weights (V1)"), QStringLiteral("IMAGENET1K_V1"));
    m_startFrom->addItem(tr("ImageNet weights (V2)"), QStringLiteral("IMAGENET1K_V2"));
    m_startFrom->addItem(tr("A weights file"), QStringLiteral("file"));
    m_finetune = new QComboBox(modelBox);
    m_finetune->setObjectName(QStringLiteral("finetuneCombo"));
    m_finetune->addItem(tr("Every layer"), int(FinetuneMode::Full));
    m_finetune->addItem(tr("The head only (backbone frozen)"), int(FinetuneMode::Head));
    m_finetune->addItem(tr("The head, then every layer"), int(FinetuneMode::HeadThenFull));
    m_finetune->setItemData(1,
                            tr("Only the last layer learns; the backbone's weights, BatchNorm "
                               "statistics and stochastic depth stay fixed. With train "
                               "transforms that draw no random numbers its features are computed "
                               "once, and an epoch takes seconds"),
                            Qt::ToolTipRole);
    m_finetune->setItemData(2,
                            tr("The head alone for the first epochs, then the backbone too, in "
                               "a parameter group of its own"),
                            Qt::ToolTipRole);
    m_unfreezeEpoch = new QSpinBox(modelBox);
    m_unfreezeEpoch->setObjectName(QStringLiteral("unfreezeEpochSpin"));
    m_unfreezeEpoch->setRange(1, 10000);
    m_unfreezeEpoch->setSuffix(tr(" epoch(s) of the head alone"));
    m_backboneLrFactor = doubleSpin(0.001, 1.0, 0.1, 3, modelBox);
    m_backboneLrFactor->setObjectName(QStringLiteral("backboneLrFactorSpin"));
    m_backboneLrFactor->setPrefix(QStringLiteral("× "));
    m_backboneLrFactor->setToolTip(tr("The backbone learns at the learning rate times this "
                                      "(1: as fast as the head)"));
    m_modelForm = new QFormLayout(modelBox);
    m_modelForm->addRow(tr("Architecture:"), m_model);
    m_modelForm->addRow(m_modelDescription);
    m_modelForm->addRow(tr("Start from:"), m_startFrom);
    m_modelForm->addRow(m_weightsRow);
    m_modelForm->addRow(tr("Fine-tune:"), m_finetune);
    m_modelForm->addRow(tr("Unfreeze after:"), m_unfreezeEpoch);
    m_modelForm->addRow(tr("Backbone lr:"), m_backboneLrFactor);
    connect(m_model, &QComboBox::currentIndexChanged, this,
            &TrainingWorkspace::updateModelDescription);
    connect(m_startFrom, &QComboBox::currentIndexChanged, this,
            &TrainingWorkspace::updateStartFrom);
    connect(m_finetune, &QComboBox::currentIndexChanged, this,
            &TrainingWorkspace::updateFinetuneFields);
    updateStartFrom();
    return modelBox;
}

QGroupBox *TrainingWorkspace::buildDataBox(QWidget *form)
{
    auto *dataBox = new QGroupBox(tr("Data"), form);
    m_batchSize = new QSpinBox(dataBox);
    m_batchSize->setObjectName(QStringLiteral("batchSizeSpin"));
    m_batchSize->setRange(1, 65536);
    m_workers = new QSpinBox(dataBox);
    m_workers->setObjectName(QStringLiteral("workersSpin"));
    m_workers->setRange(0, 256);
    m_workers->setSpecialValueText(tr("all cores"));
    m_workers->setToolTip(tr("Threads that decode and transform images"));
    m_valLabel = mutedLabel(QString(), dataBox);
    m_valLabel->setObjectName(QStringLiteral("valLabel"));
    m_valSplitSpin = doubleSpin(1.0, 90.0, 1.0, 1, dataBox);
    m_valSplitSpin->setObjectName(QStringLiteral("valSplitSpin"));
    m_valSplitSpin->setSuffix(QStringLiteral(" %"));
    m_valSplitSpin->setToolTip(tr("Images held out for validation, per class and seeded: the "
                                  "dataset has no val folder"));
    m_trainTransforms = codeView(dataBox);
    m_trainTransforms->setObjectName(QStringLiteral("trainTransformsView"));
    m_valTransforms = codeView(dataBox);
    m_valTransforms->setObjectName(QStringLiteral("valTransformsView"));
    for (QPlainTextEdit *view : {m_trainTransforms, m_valTransforms})
        view->setPlaceholderText(tr("The defaults for this dataset"));
    auto *editTransforms = new QPushButton(tr("Edit in Transforms Workspace"), dataBox);
    editTransforms->setObjectName(QStringLiteral("editTransformsButton"));
    connect(editTransforms, &QPushButton::clicked, this,
            &TrainingWorkspace::editTransformsRequested);
    m_dataForm = new QFormLayout(dataBox);
    m_dataForm->addRow(tr("Batch size:"), m_batchSize);
    m_dataForm->addRow(tr("Workers:"), m_workers);
    m_dataForm->addRow(tr("Validation:"), m_valLabel);
    m_dataForm->addRow(tr("Hold out:"), m_valSplitSpin);
    m_dataForm->addRow(tr("Train transforms:"), new QWidget(dataBox));
    m_dataForm->addRow(m_trainTransforms);
    m_dataForm->addRow(tr("Val transforms:"), new QWidget(dataBox));
    m_dataForm->addRow(m_valTransforms);
    auto *showBatchButton = new QPushButton(tr("Show Batch…"), dataBox);
    showBatchButton->setObjectName(QStringLiteral("trainingShowBatchButton"));
    showBatchButton->setToolTip(tr("The first training batch a run with these settings gets, "
                                   "with labels"));
    connect(showBatchButton, &QPushButton::clicked, this, &TrainingWorkspace::showBatch);
    auto *transformButtons = new QHBoxLayout;
    transformButtons->addWidget(editTransforms);
    transformButtons->addWidget(showBatchButton);
    m_dataForm->addRow(transformButtons);
    return dataBox;
}

QGroupBox *TrainingWorkspace::buildOptimisationBox(QWidget *form)
{
    auto *optimBox = new QGroupBox(tr("Optimisation"), form);
    m_epochs = new QSpinBox(optimBox);
    m_epochs->setObjectName(QStringLiteral("epochsSpin"));
    m_epochs->setRange(1, 100000);
    m_optimizer = new QComboBox(optimBox);
    m_optimizer->setObjectName(QStringLiteral("optimizerCombo"));
    m_optimizer->addItem(tr("SGD"), int(OptimizerKind::SGD));
    m_optimizer->addItem(tr("Adam"), int(OptimizerKind::Adam));
    m_optimizer->addItem(tr("AdamW"), int(OptimizerKind::AdamW));
    m_lr = numberEdit(0.0, 100.0, optimBox);
    m_lr->setObjectName(QStringLiteral("lrEdit"));
    m_lr->setToolTip(tr("Peak learning rate (e.g. 0.1 for SGD, 3e-4 for Adam)"));
    m_momentum = doubleSpin(0.0, 0.999, 0.05, 3, optimBox);
    m_momentum->setObjectName(QStringLiteral("momentumSpin"));
    m_nesterov = new QCheckBox(tr("Nesterov"), optimBox);
    auto *momentumRow = new QHBoxLayout;
    momentumRow->addWidget(m_momentum);
    momentumRow->addWidget(m_nesterov);
    momentumRow->addStretch(1);
    m_weightDecay = numberEdit(0.0, 10.0, optimBox);
    m_weightDecay->setObjectName(QStringLiteral("weightDecayEdit"));
    m_labelSmoothing = doubleSpin(0.0, 0.9, 0.05, 2, optimBox);
    m_labelSmoothing->setObjectName(QStringLiteral("labelSmoothingSpin"));
    m_gradClip = doubleSpin(0.0, 1000.0, 0.5, 2, optimBox);
    m_gradClip->setObjectName(QStringLiteral("gradClipSpin"));
    m_gradClip->setSpecialValueText(tr("off"));
    m_gradClip->setToolTip(tr("Clip the gradients' global L2 norm to this value"));
    auto *optimForm = new QFormLayout(optimBox);
    optimForm->addRow(tr("Epochs:"), m_epochs);
    optimForm->addRow(tr("Optimizer:"), m_optimizer);
    m_findLrButton = new QPushButton(tr("Find…"), optimBox);
    m_findLrButton->setObjectName(QStringLiteral("findLrButton"));
    m_findLrButton->setToolTip(
        tr("Find learning rate: a short mock training with a growing rate (fastai's lr_find) on "
           "these settings; pick a suggestion or click the curve"));
    connect(m_findLrButton, &QPushButton::clicked, this, &TrainingWorkspace::openLrFinder);
    auto *lrRow = new QHBoxLayout;
    lrRow->addWidget(m_lr);
    lrRow->addWidget(m_findLrButton);
    lrRow->addStretch(1);
    optimForm->addRow(tr("Learning rate:"), lrRow);
    optimForm->addRow(tr("Momentum:"), momentumRow);
    optimForm->addRow(tr("Weight decay:"), m_weightDecay);
    optimForm->addRow(tr("Label smoothing:"), m_labelSmoothing);
    optimForm->addRow(tr("Gradient clip:"), m_gradClip);
    connect(m_optimizer, &QComboBox::activated, this, [this] {
        // Keep a sensible learning rate when the optimizer family changes.
        const double lr = numberOf(m_lr, 0.1);
        const bool sgd = m_optimizer->currentData().toInt() == int(OptimizerKind::SGD);
        if (!sgd && lr == 0.1)
            m_lr->setText(numberText(1e-3));
        else if (sgd && lr == 1e-3)
            m_lr->setText(numberText(0.1));
        updateOptimizerFields();
    });
    return optimBox;
}

QGroupBox *TrainingWorkspace::buildScheduleBox(QWidget *form)
{
    auto *scheduleBox = new QGroupBox(tr("Schedule"), form);
    m_schedule = new QComboBox(scheduleBox);
    m_schedule->setObjectName(QStringLiteral("scheduleCombo"));
    m_schedule->addItem(tr("Constant"), int(ScheduleKind::Constant));
    m_schedule->addItem(tr("Step"), int(ScheduleKind::Step));
    m_schedule->addItem(tr("Cosine"), int(ScheduleKind::Cosine));
    m_schedule->addItem(tr("One-cycle"), int(ScheduleKind::OneCycle));
    m_warmup = doubleSpin(0.0, 1000.0, 0.5, 1, scheduleBox);
    m_warmup->setObjectName(QStringLiteral("warmupSpin"));
    m_warmup->setSuffix(tr(" epochs"));
    m_warmup->setToolTip(tr("Linear warm-up from lr/100 (one-cycle has its own)"));
    m_stepEpochs = new QSpinBox(scheduleBox);
    m_stepEpochs->setRange(1, 100000);
    m_stepEpochs->setPrefix(tr("every "));
    m_stepEpochs->setSuffix(tr(" epochs"));
    m_stepGamma = doubleSpin(0.001, 1.0, 0.05, 3, scheduleBox);
    m_stepGamma->setPrefix(tr("× "));
    auto *stepRow = new QWidget(scheduleBox);
    auto *stepLayout = new QHBoxLayout(stepRow);
    stepLayout->setContentsMargins(0, 0, 0, 0);
    stepLayout->addWidget(m_stepEpochs);
    stepLayout->addWidget(m_stepGamma);
    m_scheduleForm = new QFormLayout(scheduleBox);
    m_scheduleForm->addRow(tr("Schedule:"), m_schedule);
    m_scheduleForm->addRow(tr("Warm-up:"), m_warmup);
    m_scheduleForm->addRow(tr("Decay:"), stepRow);
    connect(m_schedule, &QComboBox::currentIndexChanged, this,
            &TrainingWorkspace::updateScheduleFields);
    return scheduleBox;
}

QGroupBox *TrainingWorkspace::buildBalanceBox(QWidget *form)
{
    auto *box = new QGroupBox(tr("Imbalance and early stopping"), form);
    m_classWeighting = new QComboBox(box);
    m_classWeighting->setObjectName(QStringLiteral("classWeightingCombo"));
    m_classWeighting->addItem(tr("None"), int(ClassWeighting::None));
    m_classWeighting->addItem(tr("Balanced"), int(ClassWeighting::InverseFrequency));
    m_classWeighting->setToolTip(tr("Balanced: the loss weighs each class by N / (C × n_c) over "
                                    "the training images, so rare classes count as much as "
                                    "common ones"));
    m_sampler = new QComboBox(box);
    m_sampler->setObjectName(QStringLiteral("samplerCombo"));
    m_sampler->addItem(tr("Shuffle"), int(SamplerKind::Shuffle));
    m_sampler->addItem(tr("Weighted (classes equally often)"), int(SamplerKind::Weighted));
    m_sampler->setToolTip(tr("Weighted: each epoch draws as many images as the training set has, "
                             "with replacement, every class equally likely "
                             "(WeightedRandomSampler)"));
    m_earlyStopping = new QComboBox(box);
    m_earlyStopping->setObjectName(QStringLiteral("earlyStoppingCombo"));
    m_earlyStopping->addItem(tr("Off"), int(EarlyStopMetric::Off));
    m_earlyStopping->addItem(tr("On validation accuracy"), int(EarlyStopMetric::ValAccuracy));
    m_earlyStopping->addItem(tr("On validation loss"), int(EarlyStopMetric::ValLoss));
    m_patience = new QSpinBox(box);
    m_patience->setObjectName(QStringLiteral("patienceSpin"));
    m_patience->setRange(1, 100000);
    m_patience->setSuffix(tr(" epochs without improvement"));
    m_minDelta = doubleSpin(0.0, 1000.0, 0.001, 4, box);
    m_minDelta->setObjectName(QStringLiteral("minDeltaSpin"));
    m_minDelta->setToolTip(tr("The least change that counts as an improvement (accuracy as a "
                              "fraction: 0.01 is one point)"));
    auto *layout = new QFormLayout(box);
    layout->addRow(tr("Class weights:"), m_classWeighting);
    layout->addRow(tr("Sampler:"), m_sampler);
    layout->addRow(tr("Early stopping:"), m_earlyStopping);
    layout->addRow(tr("Patience:"), m_patience);
    layout->addRow(tr("Min. improvement:"), m_minDelta);
    auto updateEnabled = [this] {
        const bool on = m_earlyStopping->currentData().toInt() != int(EarlyStopMetric::Off);
        m_patience->setEnabled(on);
        m_minDelta->setEnabled(on);
    };
    connect(m_earlyStopping, &QComboBox::currentIndexChanged, this, updateEnabled);
    updateEnabled();
    return box;
}

void TrainingWorkspace::setClassWeighting(ClassWeighting weighting)
{
    m_classWeighting->setCurrentIndex(std::max(0, m_classWeighting->findData(int(weighting))));
}

QGroupBox *TrainingWorkspace::buildDeviceBox(QWidget *form)
{
    auto *deviceBox = new QGroupBox(tr("Device"), form);
    m_device = new QComboBox(deviceBox);
    m_device->setObjectName(QStringLiteral("deviceCombo"));
    m_device->addItem(tr("Auto"), QStringLiteral("auto"));
    m_device->addItem(tr("CPU"), QStringLiteral("cpu"));
    for (const QString &device : cudaDevices())
        m_device->addItem(device, device);
    m_memoryFormat = new QComboBox(deviceBox);
    m_memoryFormat->setObjectName(QStringLiteral("memoryFormatCombo"));
    m_memoryFormat->addItem(tr("Automatic (channels_last)"), int(MemoryFormat::Auto));
    m_memoryFormat->addItem(tr("channels_last"), int(MemoryFormat::ChannelsLast));
    m_memoryFormat->addItem(tr("Contiguous (NCHW)"), int(MemoryFormat::Contiguous));
    m_memoryFormat->setToolTip(tr("channels_last speeds up convolutions on recent GPUs and, with "
                                  "this libtorch, CPU training too (see the README's benchmarks)"));
    m_amp = new QComboBox(deviceBox);
    m_amp->setObjectName(QStringLiteral("ampCombo"));
    m_amp->addItem(tr("Automatic"), int(AmpMode::Auto));
    m_amp->addItem(tr("Off (float32)"), int(AmpMode::Off));
    m_amp->addItem(tr("bfloat16"), int(AmpMode::BFloat16));
    m_amp->addItem(tr("float16 (loss scaling)"), int(AmpMode::Float16));
    m_seed = new QSpinBox(deviceBox);
    m_seed->setObjectName(QStringLiteral("seedSpin"));
    m_seed->setRange(0, INT_MAX);
    m_seed->setToolTip(tr("Seeds the model's initialisation, the data order and the augmentation"));
    m_processes = new QSpinBox(deviceBox);
    m_processes->setObjectName(QStringLiteral("processesSpin"));
    m_processes->setRange(1, std::max(2, QThread::idealThreadCount()));
    m_processes->setSuffix(tr(" process(es)"));
    m_processes->setToolTip(tr("Data-parallel training on this machine, as PyTorch's "
                               "DistributedDataParallel under torchrun: each process takes its "
                               "share of every epoch with the batch size above, gradients are "
                               "averaged, the cores are shared"));
    auto *copyTorchrun = new QToolButton(deviceBox);
    copyTorchrun->setObjectName(QStringLiteral("copyTorchrunButton"));
    copyTorchrun->setText(tr("Copy torchrun command"));
    copyTorchrun->setToolTip(tr("The command that runs this training with torchrun, on this "
                                "machine or, with its --nnodes form, on a cluster"));
    connect(copyTorchrun, &QToolButton::clicked, this, [this] {
        const TrainConfig c = config();
        const QString text = tr("# this machine\n%1\n# several machines: run on each, NODE0_HOST "
                                "being the first\n%2\n")
                                 .arg(torchrunCommand(c, m_processes->value()),
                                      torchrunCommand(c, m_processes->value(), 2));
        QGuiApplication::clipboard()->setText(text);
        Q_EMIT statusMessage(tr("Copied the torchrun command"));
    });
    auto *processRow = new QHBoxLayout;
    processRow->addWidget(m_processes, 1);
    processRow->addWidget(copyTorchrun);
    auto *deviceForm = new QFormLayout(deviceBox);
    deviceForm->addRow(tr("Device:"), m_device);
    deviceForm->addRow(tr("Processes:"), processRow);
    deviceForm->addRow(tr("Mixed precision:"), m_amp);
    deviceForm->addRow(tr("Memory format:"), m_memoryFormat);
    deviceForm->addRow(tr("Seed:"), m_seed);
    connect(m_device, &QComboBox::currentIndexChanged, this, &TrainingWorkspace::updateDeviceHint);
    return deviceBox;
}

QGroupBox *TrainingWorkspace::buildOutputBox(QWidget *form)
{
    auto *outputBox = new QGroupBox(tr("Output"), form);
    m_runFolderEdit = new QLineEdit(outputBox);
    m_runFolderEdit->setObjectName(QStringLiteral("runFolderEdit"));
    m_runFolderEdit->setClearButtonEnabled(true);
    auto *folderBrowse = new QToolButton(outputBox);
    folderBrowse->setText(QStringLiteral("…"));
    folderBrowse->setToolTip(tr("Choose the run folder"));
    connect(folderBrowse, &QToolButton::clicked, this, [this] {
        const QString folder = QFileDialog::getExistingDirectory(
            this, tr("Run Folder"), QFileInfo(defaultRunFolder()).absolutePath());
        if (!folder.isEmpty())
            m_runFolderEdit->setText(QDir::toNativeSeparators(folder));
    });
    auto *folderRow = new QHBoxLayout;
    folderRow->addWidget(m_runFolderEdit, 1);
    folderRow->addWidget(folderBrowse);
    m_saveEvery = new QSpinBox(outputBox);
    m_saveEvery->setRange(0, 100000);
    m_saveEvery->setSpecialValueText(tr("never"));
    m_saveEvery->setPrefix(tr("every "));
    m_saveEvery->setSuffix(tr(" epochs"));
    m_saveEvery->setToolTip(tr("Also keep epoch_NNN.pth (last.pth and best.pth are always "
                               "written)"));
    auto *outputForm = new QFormLayout(outputBox);
    outputForm->addRow(tr("Run folder:"), folderRow);
    outputForm->addRow(tr("Keep epochs:"), m_saveEvery);
    return outputBox;
}

QWidget *TrainingWorkspace::buildCurves()
{
    auto *page = new QWidget(this);
    using Style = CurveChart::SeriesStyle;

    m_lossChart = new CurveChart(tr("Training loss"), tr("step"), tr("loss"), page);
    m_lossChart->setObjectName(QStringLiteral("lossChart"));
    m_ids.lossRaw
        = m_lossChart->addSeries(tr("per batch"), Style{kTrainColor, 1.0, Qt::SolidLine, 0.35});
    m_ids.lossSmooth
        = m_lossChart->addSmoothedSeries(m_ids.lossRaw, tr("smoothed"), Style{kTrainDark, 2.0});
    m_lossChart->setSmoothingControlVisible(true);
    m_lossChart->setXIntegerTicks(true);

    m_accuracyChart = new CurveChart(tr("Accuracy"), tr("epoch"), tr("%"), page);
    m_accuracyChart->setObjectName(QStringLiteral("accuracyChart"));
    m_ids.trainAccuracy = m_accuracyChart->addSeries(tr("train"), Style{kTrainColor, 2.0});
    m_ids.valAccuracy = m_accuracyChart->addSeries(tr("val"), Style{kValColor, 2.0});
    m_accuracyChart->setXIntegerTicks(true);

    m_epochLossChart = new CurveChart(tr("Loss per epoch"), tr("epoch"), tr("loss"), page);
    m_epochLossChart->setObjectName(QStringLiteral("epochLossChart"));
    m_ids.trainLoss = m_epochLossChart->addSeries(tr("train"), Style{kTrainColor, 2.0});
    m_ids.valLoss = m_epochLossChart->addSeries(tr("val"), Style{kValColor, 2.0});
    m_epochLossChart->setXIntegerTicks(true);

    m_lrChart = new CurveChart(tr("Learning rate"), tr("step"), tr("lr"), page);
    m_lrChart->setObjectName(QStringLiteral("lrChart"));
    m_ids.lr = m_lrChart->addSeries(tr("learning rate"), Style{kLrColor, 1.8});
    m_lrChart->setXIntegerTicks(true);

    m_speedChart = new CurveChart(tr("Throughput"), tr("step"), tr("images/s"), page);
    m_speedChart->setObjectName(QStringLiteral("speedChart"));
    m_ids.speed = m_speedChart->addSeries(tr("images/s"), Style{kSpeedColor, 1.5});
    m_speedChart->setXIntegerTicks(true);

    for (CurveChart *chart : charts()) {
        chart->menu()->addSeparator();
        chart->menu()->addAction(tr("Overlay Earlier Run…"), this,
                                 &TrainingWorkspace::overlayRunInteractive);
        chart->menu()->addAction(tr("Remove Overlays"), this, &TrainingWorkspace::clearOverlays);
    }

    auto *overlay = new QPushButton(tr("Overlay Earlier Run…"), page);
    overlay->setObjectName(QStringLiteral("overlayButton"));
    overlay->setToolTip(tr("Draw another run's curves dashed, from its folder"));
    connect(overlay, &QPushButton::clicked, this, &TrainingWorkspace::overlayRunInteractive);
    auto *removeOverlays = new QPushButton(tr("Remove Overlays"), page);
    connect(removeOverlays, &QPushButton::clicked, this, &TrainingWorkspace::clearOverlays);
    auto *resetZoom = new QPushButton(tr("Reset Zoom"), page);
    connect(resetZoom, &QPushButton::clicked, this, [this] {
        for (CurveChart *chart : charts())
            chart->resetZoom();
    });
    auto *bar = new QHBoxLayout;
    bar->addWidget(overlay);
    bar->addWidget(removeOverlays);
    bar->addWidget(resetZoom);
    bar->addStretch(1);

    auto *grid = new QGridLayout;
    grid->setSpacing(6);
    grid->addWidget(m_lossChart, 0, 0, 1, 2);
    grid->addWidget(m_accuracyChart, 0, 2);
    grid->addWidget(m_epochLossChart, 1, 0);
    grid->addWidget(m_lrChart, 1, 1);
    grid->addWidget(m_speedChart, 1, 2);
    for (int i = 0; i < 3; ++i)
        grid->setColumnStretch(i, 1);
    grid->setRowStretch(0, 1);
    grid->setRowStretch(1, 1);

    auto *layout = new QVBoxLayout(page);
    layout->setContentsMargins(4, 6, 4, 4);
    layout->addLayout(bar);
    layout->addLayout(grid, 1);
    return page;
}

QList<CurveChart *> TrainingWorkspace::charts() const
{
    return {m_lossChart, m_accuracyChart, m_epochLossChart, m_lrChart, m_speedChart};
}

void TrainingWorkspace::saveState()
{
    if (m_settings)
        m_settings->setSplitterState(QStringLiteral("training"), m_splitter->saveState());
}

// ---- Dataset -----------------------------------------------------------------------------------

void TrainingWorkspace::setDataset(const QString &root, const DatasetScan &scan)
{
    if (QDir::cleanPath(root) != m_root) {
        for (QPlainTextEdit *view : {m_trainTransforms, m_valTransforms})
            view->setPlaceholderText(tr("The defaults for this dataset"));
    }
    m_root = QDir::cleanPath(root);
    m_scan = scan;
    m_valSplit.clear();
    for (const QString &split : scan.splits) {
        if (!split.isEmpty() && split != u"train") {
            m_valSplit = split;
            break;
        }
    }
    m_title->setText(tr("Train on %1").arg(QFileInfo(m_root).fileName()));
    m_title->setToolTip(QDir::toNativeSeparators(m_root));
    m_pages->setCurrentIndex(1);

    const QLocale locale;
    const IndexPtr valIndex = m_valSplit.isEmpty() ? IndexPtr() : scan.index(m_valSplit);
    if (valIndex) {
        m_valLabel->setText(tr("the %1 folder: %2 images")
                                .arg(m_valSplit, locale.toString(valIndex->sampleCount())));
    } else {
        m_valLabel->setText(tr("no val folder: a seeded share of each class is held out"));
    }
    setRowVisible(m_dataForm, m_valSplitSpin, !valIndex);
    updateValidationSource();
    m_evaluation->setCheckpointFolder(QFileInfo(defaultRunFolder()).absolutePath());
    m_predict->setStartFolder(m_root);
    m_mislabel->setDataset(m_root);
    updateTransforms();
    updateDeviceHint();
    updateControls();
    Q_EMIT datasetChanged(true);
}

void TrainingWorkspace::clearDataset()
{
    m_root.clear();
    m_scan = {};
    m_valSplit.clear();
    m_pages->setCurrentIndex(isRunning() ? 1 : 0);
    updateControls();
    Q_EMIT datasetChanged(false);
}

void TrainingWorkspace::updateValidationSource(const TrainConfig *run)
{
    if (m_root.isEmpty()) {
        m_evaluation->setValidationSource({}, {});
        return;
    }
    const QLocale locale;
    const IndexPtr valIndex = m_valSplit.isEmpty() ? IndexPtr() : m_scan.index(m_valSplit);
    if (valIndex) {
        std::vector<LoaderSample> samples;
        samples.reserve(valIndex->samples.size());
        for (const Sample &sample : valIndex->samples)
            samples.push_back({valIndex->absolutePath(sample), sample.classIndex});
        m_evaluation->setValidationSamples(
            std::move(samples),
            tr("the %1 split (%2 images)")
                .arg(m_valSplit, locale.toString(valIndex->sampleCount())));
        return;
    }
    // The images a run with these settings holds out (seeded), listed when needed.
    const TrainConfig config = run ? *run : this->config();
    m_evaluation->setValidationSource(
        [config]() -> Result<std::vector<LoaderSample>> {
            Result<TrainingData> prepared = prepareTrainingData(config);
            if (!prepared)
                return prepared.error();
            return std::move(prepared.value().val);
        },
        tr("the held-out %1%").arg(config.valSplit * 100.0, 0, 'g', 3));
}

void TrainingWorkspace::showEvent(QShowEvent *event)
{
    QWidget::showEvent(event);
    // The Transforms workspace may have changed them meanwhile.
    updateTransforms();
}

void TrainingWorkspace::updateTransforms()
{
    if (m_root.isEmpty() || !m_settings) {
        m_trainTransforms->clear();
        m_valTransforms->clear();
        return;
    }
    const Settings::PipelineSources sources = m_settings->transformPipelines(m_root);
    if (m_trainTransforms->toPlainText() != sources.train)
        m_trainTransforms->setPlainText(sources.train);
    if (m_valTransforms->toPlainText() != sources.val)
        m_valTransforms->setPlainText(sources.val);
}

// ---- The form ----------------------------------------------------------------------------------

QString TrainingWorkspace::defaultRunFolder() const
{
    const QString runs = QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation)
        + QStringLiteral("/ImageFolderStudio/runs");
    const QString name = m_root.isEmpty() ? QStringLiteral("run") : QFileInfo(m_root).fileName();
    QString folder = runs + u'/' + name + u'-'
        + QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-hhmmss"));
    // Two runs started within a second get their own folders.
    for (int i = 2; QFileInfo::exists(folder); ++i)
        folder = folder.section(u'~', 0, 0) + u'~' + QString::number(i);
    return folder;
}

namespace {

/// The first batch's source for a run with `config` and `seed`: prepared and resolved as the
/// run prepares them, the train loader's options as TrainingRun::prepareLoaders sets them.
Result<BatchSource> trainingBatchSource(TrainConfig config, quint64 seed)
{
    config.seed = seed;
    Result<TrainingData> data = prepareTrainingData(config);
    if (!data)
        return data.error();
    Result<ResolvedPipelines> pipelines
        = resolvePipelines(config.trainTransforms, config.valTransforms, data->traits);
    if (!pipelines)
        return pipelines.error();
    BatchSource source;
    source.classes = data->classes;
    source.samples = std::move(data.value().train);
    source.pipeline = pipelines->train;
    source.options.batchSize = config.batchSize;
    source.options.workers = config.workers;
    source.options.shuffle = true;
    source.options.dropLast
        = config.dropLast && qsizetype(source.samples.size()) >= config.batchSize;
    source.options.seed = config.seed;
    if (config.sampler == SamplerKind::Weighted) {
        std::vector<qint64> counts(size_t(source.classes.size()), 0);
        for (const LoaderSample &sample : source.samples)
            if (sample.label >= 0 && sample.label < source.classes.size())
                ++counts[size_t(sample.label)];
        for (const LoaderSample &sample : source.samples)
            source.options.sampleWeights.push_back(1.0 / double(counts[size_t(sample.label)]));
        source.note = QStringLiteral("class-balanced sampling");
    }
    return source;
}

} // namespace

void TrainingWorkspace::showBatch()
{
    if (m_root.isEmpty())
        return;
    if (!m_batchView)
        m_batchView = new BatchView(this);
    const TrainConfig settings = config();
    m_batchView->showBatch([settings](quint64 seed) { return trainingBatchSource(settings, seed); },
                           settings.seed);
    m_batchView->show();
    m_batchView->raise();
}

TrainConfig TrainingWorkspace::config() const
{
    TrainConfig config;
    config.dataRoot = m_root;
    if (!hasValFolder())
        config.valSplit = m_valSplitSpin->value() / 100.0;
    if (m_settings && !m_root.isEmpty()) {
        const Settings::PipelineSources sources = m_settings->transformPipelines(m_root);
        config.trainTransforms = sources.train;
        config.valTransforms = sources.val;
    }
    config.batchSize = m_batchSize->value();
    config.workers = m_workers->value();
    config.arch = m_model->currentData().toString();
    if (const QString start = m_startFrom->currentData().toString(); start == u"file")
        config.weightsPath = QDir::fromNativeSeparators(m_weights->text().trimmed());
    else
        config.pretrained = start;
    if (config.pretrained.isEmpty() && config.weightsPath.isEmpty()) {
        config.finetune = FinetuneMode::Full; // hidden: nothing to fine-tune from
    } else {
        config.finetune = FinetuneMode(m_finetune->currentData().toInt());
        config.unfreezeEpoch = m_unfreezeEpoch->value();
        config.backboneLrFactor = m_backboneLrFactor->value();
    }
    config.epochs = m_epochs->value();
    config.optimizer = OptimizerKind(m_optimizer->currentData().toInt());
    config.lr = numberOf(m_lr, config.lr);
    config.momentum = m_momentum->value();
    config.nesterov = m_nesterov->isChecked();
    config.weightDecay = numberOf(m_weightDecay, config.weightDecay);
    config.schedule = ScheduleKind(m_schedule->currentData().toInt());
    config.warmupEpochs = m_warmup->value();
    config.stepEpochs = m_stepEpochs->value();
    config.stepGamma = m_stepGamma->value();
    config.labelSmoothing = m_labelSmoothing->value();
    config.gradClipNorm = m_gradClip->value();
    config.classWeighting = ClassWeighting(m_classWeighting->currentData().toInt());
    config.sampler = SamplerKind(m_sampler->currentData().toInt());
    config.earlyStopping = EarlyStopMetric(m_earlyStopping->currentData().toInt());
    config.patience = m_patience->value();
    config.minDelta = m_minDelta->value();
    config.seed = uint64_t(m_seed->value());
    config.device = m_device->currentData().toString();
    config.memoryFormat = MemoryFormat(m_memoryFormat->currentData().toInt());
    config.amp = m_amp->isEnabled() ? AmpMode(m_amp->currentData().toInt()) : AmpMode::Off;
    config.outDir = QDir::fromNativeSeparators(m_runFolderEdit->text().trimmed());
    config.saveEveryEpochs = m_saveEvery->value();
    return config;
}

void TrainingWorkspace::setConfig(const TrainConfig &config)
{
    const int model = m_model->findData(config.arch);
    m_model->setCurrentIndex(model >= 0 ? model : 0);
    m_weights->setText(QDir::toNativeSeparators(config.weightsPath));
    QString start = config.weightsPath.isEmpty() ? QString() : QStringLiteral("file");
    if (auto weights = findPretrainedWeights(config.arch, config.pretrained))
        start = weights->name; // DEFAULT as the name it stands for
    m_startFrom->setCurrentIndex(std::max(0, m_startFrom->findData(start)));
    m_finetune->setCurrentIndex(std::max(0, m_finetune->findData(int(config.finetune))));
    m_unfreezeEpoch->setValue(config.unfreezeEpoch);
    m_backboneLrFactor->setValue(config.backboneLrFactor);
    updateFinetuneFields();
    m_batchSize->setValue(config.batchSize);
    m_workers->setValue(config.workers);
    m_valSplitSpin->setValue(config.valSplit * 100.0);
    m_epochs->setValue(config.epochs);
    m_optimizer->setCurrentIndex(std::max(0, m_optimizer->findData(int(config.optimizer))));
    m_lr->setText(numberText(config.lr));
    m_momentum->setValue(config.momentum);
    m_nesterov->setChecked(config.nesterov);
    m_weightDecay->setText(numberText(config.weightDecay));
    m_labelSmoothing->setValue(config.labelSmoothing);
    m_gradClip->setValue(config.gradClipNorm);
    setClassWeighting(config.classWeighting);
    m_sampler->setCurrentIndex(std::max(0, m_sampler->findData(int(config.sampler))));
    m_earlyStopping->setCurrentIndex(
        std::max(0, m_earlyStopping->findData(int(config.earlyStopping))));
    m_patience->setValue(config.patience);
    m_minDelta->setValue(config.minDelta);
    m_schedule->setCurrentIndex(std::max(0, m_schedule->findData(int(config.schedule))));
    m_warmup->setValue(config.warmupEpochs);
    m_stepEpochs->setValue(config.stepEpochs);
    m_stepGamma->setValue(config.stepGamma);
    m_seed->setValue(int(std::min<uint64_t>(config.seed, INT_MAX)));
    int device = m_device->findData(config.device);
    if (device < 0 && config.device == u"cuda")
        device = m_device->findData(QStringLiteral("cuda:0"));
    m_device->setCurrentIndex(std::max(0, device));
    m_memoryFormat->setCurrentIndex(
        std::max(0, m_memoryFormat->findData(int(config.memoryFormat))));
    m_amp->setCurrentIndex(std::max(0, m_amp->findData(int(config.amp))));
    m_runFolderEdit->setText(QDir::toNativeSeparators(config.outDir));
    m_saveEvery->setValue(config.saveEveryEpochs);
    updateModelDescription();
    updateOptimizerFields();
    updateScheduleFields();
    updateDeviceHint();
}

void TrainingWorkspace::updateModelDescription()
{
    const ModelArch *arch = findModelArch(m_model->currentData().toString());
    if (!arch) {
        m_modelDescription->clear();
        return;
    }
    QString text = arch->description;
    if (arch->parameters10 > 0)
        text += QStringLiteral(" · ") + parametersText(arch->parameters10) + tr(" with 10 classes");
    m_modelDescription->setText(text);
    updateStartFrom();
}

/// The ImageNet choices the architecture has (torchvision's V1 / V2), with what they expect.
void TrainingWorkspace::updateStartFrom()
{
    const QList<PretrainedWeights> offered
        = pretrainedWeightsFor(m_model->currentData().toString());
    auto *items = qobject_cast<QStandardItemModel *>(m_startFrom->model());
    for (int i = 0; i < m_startFrom->count(); ++i) {
        const QString name = m_startFrom->itemData(i).toString();
        if (name.isEmpty() || name == u"file")
            continue;
        const auto w = std::find_if(offered.begin(), offered.end(),
                                    [&](const PretrainedWeights &p) { return p.name == name; });
        items->item(i)->setEnabled(w != offered.end());
        m_startFrom->setItemData(
            i,
            w == offered.end()
                ? tr("torchvision 0.14 has no %1 weights for this architecture").arg(name)
                : tr("torchvision's %1 (ImageNet top-1 %2%), from torch.hub's cache or "
                     "downloaded into it. Without pipelines of your own the run uses the weights' "
                     "preprocessing: Resize(%3), CenterCrop(%4), ImageNet's mean and std")
                      .arg(w->fileName())
                      .arg(w->top1, 0, 'f', 1)
                      .arg(w->preprocessing.resizeSize)
                      .arg(w->preprocessing.cropSize),
            Qt::ToolTipRole);
    }
    if (!items->item(m_startFrom->currentIndex())->isEnabled()) {
        // The weights chosen do not exist for this architecture: its default, else random.
        const auto fallback = std::find_if(offered.begin(), offered.end(),
                                           [](const PretrainedWeights &p) { return p.isDefault; });
        m_startFrom->setCurrentIndex(
            std::max(0, fallback == offered.end() ? 0 : m_startFrom->findData(fallback->name)));
    }
    m_weightsRow->setVisible(m_startFrom->currentData().toString() == u"file");
    updateFinetuneFields();
}

/// Fine-tuning is offered when the run starts from weights; the unfreeze epoch for head-then-
/// full, the backbone's rate whenever the backbone trains.
void TrainingWorkspace::updateFinetuneFields()
{
    if (!m_modelForm || !m_finetune)
        return;
    const bool fromWeights = !m_startFrom->currentData().toString().isEmpty();
    const auto mode = FinetuneMode(m_finetune->currentData().toInt());
    m_modelForm->setRowVisible(m_finetune, fromWeights);
    m_modelForm->setRowVisible(m_unfreezeEpoch, fromWeights && mode == FinetuneMode::HeadThenFull);
    m_modelForm->setRowVisible(m_backboneLrFactor, fromWeights && mode != FinetuneMode::Head);
}

void TrainingWorkspace::updateOptimizerFields()
{
    const bool sgd = m_optimizer->currentData().toInt() == int(OptimizerKind::SGD);
    m_momentum->setEnabled(sgd);
    m_nesterov->setEnabled(sgd);
}

void TrainingWorkspace::updateScheduleFields()
{
    const auto kind = ScheduleKind(m_schedule->currentData().toInt());
    m_warmup->setEnabled(kind != ScheduleKind::OneCycle);
    setRowVisible(m_scheduleForm, m_stepEpochs->parentWidget(), kind == ScheduleKind::Step);
}

void TrainingWorkspace::updateDeviceHint()
{
    const QString request = m_device->currentData().toString();
    const Result<std::pair<QString, QString>> resolved = resolveDevice(request);
    const bool cuda = resolved && resolved->first.startsWith(u"cuda");
    // float16 needs CUDA; bfloat16 autocast runs on the CPU too (fast where it is native).
    if (auto *items = qobject_cast<QStandardItemModel *>(m_amp->model()))
        items->item(m_amp->findData(int(AmpMode::Float16)))->setEnabled(cuda);
    if (!cuda && m_amp->currentData().toInt() == int(AmpMode::Float16))
        m_amp->setCurrentIndex(m_amp->findData(int(AmpMode::Auto)));
    if (!cuda)
        m_amp->setToolTip(
            cpuHasNativeBf16()
                ? tr("Automatic: bfloat16 autocast with channels_last (this CPU has %1) for the "
                     "models it speeds up, float32 otherwise")
                      .arg(cpuBf16Features())
                : tr("Automatic: float32 (this CPU has no native bfloat16; bfloat16 is "
                     "emulated, slowly)"));
    else
        m_amp->setToolTip(tr("Automatic mixed precision: bfloat16 needs no loss scaling"));
    if (isRunning() || !m_start.device.isEmpty())
        return; // the device of the run is on show
    if (!resolved) {
        m_deviceLabel->setText(tr("Device: <b>?</b>"));
        m_deviceNote->setText(resolved.errorMessage());
        return;
    }
    m_deviceLabel->setText(tr("Device: <b>%1</b>").arg(resolved->first.toHtmlEscaped()));
    m_deviceNote->setText(resolved->second);
    m_deviceNote->setToolTip(resolved->second);
}

// ---- Running -----------------------------------------------------------------------------------

bool TrainingWorkspace::startRun()
{
    TrainConfig config = this->config();
    if (config.outDir.isEmpty())
        config.outDir = defaultRunFolder();
    return startRun(config);
}

bool TrainingWorkspace::startRun(const TrainConfig &config)
{
    if (isRunning())
        return false;
    if (m_settings && config.resumePath.isEmpty())
        m_settings->setTrainingForm(config.toJson());
    if (config.dataRoot.isEmpty()) {
        m_banner->showMessage(WarningBanner::Level::Error, tr("Open a dataset to train on."));
        return false;
    }
    const Status valid = config.validate();
    if (!valid) {
        m_banner->showMessage(WarningBanner::Level::Error,
                              tr("Cannot start: %1").arg(valid.errorMessage()));
        Q_EMIT statusMessage(valid.errorMessage());
        return false;
    }
    m_banner->dismiss();
    m_runFolder = config.outDir;
    m_start = TrainStart{};
    m_bestCheckpoint.clear();
    m_lastCheckpoint.clear();
    m_epochsDone = 0;
    for (CurveChart *chart : charts()) {
        chart->setExportFolder(m_runFolder);
        chart->resetZoom();
    }
    for (int id : {m_ids.lossRaw})
        m_lossChart->setPoints(id, {});
    for (int id : {m_ids.trainAccuracy, m_ids.valAccuracy})
        m_accuracyChart->setPoints(id, {});
    for (int id : {m_ids.trainLoss, m_ids.valLoss})
        m_epochLossChart->setPoints(id, {});
    m_lrChart->setPoints(m_ids.lr, {});
    m_speedChart->setPoints(m_ids.speed, {});
    m_evaluation->clear();
    m_evaluation->setCheckpointFolder(m_runFolder);
    updateValidationSource(&config);
    m_predict->setRunCheckpoints({}, {});
    m_predict->setClassifierOptions([&] {
        ClassifierOptions options;
        options.device = config.device;
        options.valTransforms = config.valTransforms;
        return options;
    }());
    m_evaluation->setClassifierOptions([&] {
        ClassifierOptions options;
        options.device = config.device;
        options.valTransforms = config.valTransforms;
        return options;
    }());
    m_log->clear();
    appendLog(tr("Run folder: %1").arg(QDir::toNativeSeparators(m_runFolder)));
    if (!config.resumePath.isEmpty())
        appendLog(tr("Resuming from %1 (%2)")
                      .arg(QDir::toNativeSeparators(config.resumePath),
                           config.resumeWeightsOnly ? tr("weights only") : tr("exactly")));
    m_progress->setRange(0, 0); // busy until the first step
    m_progressLabel->setText(tr("Preparing…"));
    m_statusLabel->setText(tr("Loading the dataset and building %1…").arg(config.arch));
    m_transientStatus = true;
    if (m_processes->value() > 1)
        appendLog(tr("Data-parallel: %1 processes on this machine (this one is rank 0)")
                      .arg(m_processes->value()));
    if (!m_job->start(config, m_processes->value()))
        return false;
    setRunning(true);
    Q_EMIT statusMessage(tr("Training %1 on %2").arg(config.arch, QFileInfo(m_root).fileName()));
    return true;
}

void TrainingWorkspace::setCommandLineTool(const QString &path)
{
    m_job->setCommandLineTool(path);
}

void TrainingWorkspace::togglePause()
{
    if (!isRunning())
        return;
    if (m_job->isPaused()) {
        m_job->resume();
        m_statusLabel->setText(tr("Running"));
    } else {
        m_job->pause();
        m_statusLabel->setText(tr("Paused: the run waits after its current batch"));
    }
    updateControls();
}

void TrainingWorkspace::stopRun(bool saveCheckpoint)
{
    if (!isRunning())
        return;
    m_job->stop(saveCheckpoint);
    m_statusLabel->setText(saveCheckpoint
                               ? tr("Saving the exact position and stopping after this batch…")
                               : tr("Stopping after this batch…"));
    updateControls();
}

bool TrainingWorkspace::isRunning() const
{
    return m_job->isRunning();
}

bool TrainingWorkspace::isPaused() const
{
    return m_job->isPaused();
}

bool TrainingWorkspace::waitForRun(int milliseconds)
{
    return m_job->wait(milliseconds);
}

void TrainingWorkspace::setRunning(bool running)
{
    updateControls();
    Q_EMIT runningChanged(running);
}

void TrainingWorkspace::updateControls()
{
    const bool running = isRunning();
    const bool stopping = m_job->isStopping();
    const bool paused = m_job->isPaused();
    m_form->setEnabled(!running);
    m_startButton->setEnabled(!running && hasDataset());
    m_resumeButton->setEnabled(!running && hasDataset());
    m_findLrButton->setEnabled(!running && hasDataset());
    m_exportButton->setEnabled(!running && QFileInfo::exists(m_bestCheckpoint));
    // The ranks of a data-parallel run do not pause.
    m_pauseButton->setEnabled(running && !stopping && m_processes->value() == 1);
    m_pauseButton->setText(paused ? tr("Resume") : tr("Pause"));
    m_pauseButton->setToolTip(paused ? tr("Go on with the run")
                                     : tr("Hold the run after the current batch"));
    m_stopButton->setEnabled(running && !stopping);
    m_saveStopButton->setEnabled(running && !stopping);
}

LrFinderDialog *TrainingWorkspace::openLrFinder()
{
    if (!hasDataset() || isRunning())
        return nullptr;
    auto *dialog = new LrFinderDialog(config(), this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &LrFinderDialog::rateChosen, this, [this](double lr) {
        m_lr->setText(numberText(lr));
        appendLog(tr("Learning rate set to %1 from the LR finder").arg(numberText(lr)));
    });
    dialog->open();
    return dialog;
}

ExportDialog *TrainingWorkspace::openExportDialog()
{
    if (isRunning() || !QFileInfo::exists(m_bestCheckpoint))
        return nullptr;
    auto *dialog = new ExportDialog(m_bestCheckpoint, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->open();
    return dialog;
}

void TrainingWorkspace::appendLog(const QString &line)
{
    m_log->appendPlainText(QTime::currentTime().toString(QStringLiteral("hh:mm:ss  ")) + line);
}

void TrainingWorkspace::onStarted(const TrainStart &start)
{
    m_start = start;
    m_openFolderButton->setEnabled(QFileInfo(m_runFolder).isDir());
    const QLocale locale;
    m_deviceLabel->setText(tr("Device: <b>%1</b>").arg(start.device.toHtmlEscaped()));
    QString deviceNote = start.deviceNote.isEmpty() ? start.runtime : start.deviceNote;
    if (!start.distributed.isEmpty()) {
        deviceNote = start.distributed + QStringLiteral(" · ") + deviceNote;
        appendLog(tr("Data-parallel: %1").arg(start.distributed));
    }
    m_deviceNote->setText(deviceNote);
    m_deviceNote->setToolTip(start.runtime);
    m_statusLabel->setText(tr("%1 training and %2 validation images, %3 batches per epoch")
                               .arg(locale.toString(qlonglong(start.trainSamples)),
                                    locale.toString(qlonglong(start.valSamples)),
                                    locale.toString(start.batchesPerEpoch)));
    m_transientStatus = true;
    // What "the defaults" turned out to be for this dataset.
    m_trainTransforms->setPlaceholderText(
        tr("The defaults for this dataset:\n%1").arg(start.trainTransforms));
    m_valTransforms->setPlaceholderText(
        tr("The defaults for this dataset:\n%1").arg(start.valTransforms));
    appendLog(tr("Device: %1. %2").arg(start.device, start.deviceNote));
    appendLog(tr("Runtime: %1").arg(start.runtime));
    appendLog(tr("Classes (%1): %2")
                  .arg(start.classes.size())
                  .arg(start.classes.join(QStringLiteral(", "))));
    appendLog(tr("%1 training images, %2 validation images; %3 batches per epoch; epochs %4 to "
                 "%5")
                  .arg(locale.toString(qlonglong(start.trainSamples)),
                       locale.toString(qlonglong(start.valSamples)),
                       locale.toString(start.batchesPerEpoch))
                  .arg(start.startEpoch)
                  .arg(start.epochs));
    if (!start.inputPath.isEmpty())
        appendLog(tr("Input: %1").arg(start.inputPath));
    appendLog(tr("Train transforms:\n%1").arg(start.trainTransforms));
    appendLog(tr("Val transforms:\n%1").arg(start.valTransforms));
    for (const QString &note : start.notes)
        appendLog(note);
    if (!start.advice.isEmpty())
        m_banner->showMessage(WarningBanner::Level::Info, start.advice.join(u' '));
    if (!start.history.epochs.isEmpty() || !start.history.steps.isEmpty()) {
        addHistory(start.history);
        m_epochsDone = int(start.history.epochs.size());
    }
    ClassifierOptions options;
    options.device = start.device;
    options.valTransforms = start.valTransforms;
    options.classes = start.classes;
    m_evaluation->setClassifierOptions(options);
    m_predict->setClassifierOptions(options);
    m_mislabel->setClassifierOptions(options);
    Q_EMIT runStarted(start);
}

void TrainingWorkspace::addHistory(const RunHistory &history)
{
    QList<QPointF> loss, lr;
    for (const StepRecord &step : history.steps) {
        loss.append(QPointF(double(step.step), step.loss));
        lr.append(QPointF(double(step.step), step.lr));
    }
    m_lossChart->appendPoints(m_ids.lossRaw, loss);
    m_lrChart->appendPoints(m_ids.lr, lr);
    for (const EpochRecord &epoch : history.epochs) {
        m_accuracyChart->appendPoint(m_ids.trainAccuracy, epoch.epoch, 100.0 * epoch.trainAccuracy);
        m_accuracyChart->appendPoint(m_ids.valAccuracy, epoch.epoch, 100.0 * epoch.valAccuracy);
        m_epochLossChart->appendPoint(m_ids.trainLoss, epoch.epoch, epoch.trainLoss);
        m_epochLossChart->appendPoint(m_ids.valLoss, epoch.epoch, epoch.valLoss);
        if (epoch.imagesPerSecond > 0)
            m_speedChart->appendPoint(m_ids.speed, double(epoch.step), epoch.imagesPerSecond);
    }
}

void TrainingWorkspace::onSteps(const QList<StepProgress> &steps)
{
    if (steps.isEmpty())
        return;
    QList<QPointF> loss, lr, speed;
    loss.reserve(steps.size());
    lr.reserve(steps.size());
    for (const StepProgress &step : steps) {
        const double x = double(step.step);
        loss.append(QPointF(x, step.loss));
        lr.append(QPointF(x, step.lr));
        if (step.imagesPerSecond > 0)
            speed.append(QPointF(x, step.imagesPerSecond));
    }
    m_lossChart->appendPoints(m_ids.lossRaw, loss);
    m_lrChart->appendPoints(m_ids.lr, lr);
    m_speedChart->appendPoints(m_ids.speed, speed);

    const StepProgress &last = steps.constLast();
    const QLocale locale;
    if (last.totalSteps > 0) {
        // QProgressBar counts in int: scale long runs down.
        const qint64 scale = std::max<qint64>(1, last.totalSteps / 1000000 + 1);
        m_progress->setRange(0, int(last.totalSteps / scale));
        m_progress->setValue(int(std::min(last.step, last.totalSteps) / scale));
    }
    QString text = tr("Epoch %1/%2 · batch %3/%4")
                       .arg(last.epoch)
                       .arg(m_start.epochs > 0 ? m_start.epochs : m_job->config().epochs)
                       .arg(locale.toString(last.batch), locale.toString(last.batches));
    if (last.imagesPerSecond > 0)
        text += tr(" · %1 img/s").arg(locale.toString(last.imagesPerSecond, 'f', 0));
    if (last.etaSeconds >= 0)
        text += tr(" · ETA %1").arg(durationText(last.etaSeconds));
    text += tr(" · loss %1").arg(last.loss, 0, 'f', 4);
    m_progressLabel->setText(text);
    if (m_transientStatus && !m_job->isPaused() && !m_job->isStopping()) {
        m_statusLabel->setText(tr("Training"));
        m_transientStatus = false;
    }
    Q_EMIT progressChanged(last);
}

void TrainingWorkspace::onEpoch(const EpochReport &report)
{
    const EpochRecord &r = report.record;
    m_epochsDone = r.epoch;
    m_accuracyChart->appendPoint(m_ids.trainAccuracy, r.epoch, 100.0 * r.trainAccuracy);
    m_epochLossChart->appendPoint(m_ids.trainLoss, r.epoch, r.trainLoss);
    if (report.evaluation || r.valLoss > 0 || r.valAccuracy > 0) {
        m_accuracyChart->appendPoint(m_ids.valAccuracy, r.epoch, 100.0 * r.valAccuracy);
        m_epochLossChart->appendPoint(m_ids.valLoss, r.epoch, r.valLoss);
    }
    if (!report.bestCheckpoint.isEmpty())
        m_bestCheckpoint = report.bestCheckpoint;
    if (!report.lastCheckpoint.isEmpty())
        m_lastCheckpoint = report.lastCheckpoint;
    m_predict->setRunCheckpoints(m_bestCheckpoint, m_lastCheckpoint);

    if (report.evaluation) {
        m_evaluation->setEvaluation(report.evaluation,
                                    report.best ? tr("Epoch %1 (best so far)").arg(r.epoch)
                                                : tr("Epoch %1").arg(r.epoch));
    }
    appendLog(tr("Epoch %1: train loss %2, accuracy %3; val loss %4, accuracy %5%6; %7, %8 img/s")
                  .arg(r.epoch)
                  .arg(r.trainLoss, 0, 'f', 4)
                  .arg(percentText(r.trainAccuracy))
                  .arg(r.valLoss, 0, 'f', 4)
                  .arg(percentText(r.valAccuracy))
                  .arg(report.best ? tr(" (best)") : QString())
                  .arg(durationText(r.seconds))
                  .arg(QLocale().toString(r.imagesPerSecond, 'f', 0)));
    if (!report.newFailures.isEmpty()) {
        for (const LoaderFailure &failure : report.newFailures)
            appendLog(
                tr("Skipped %1: %2").arg(QDir::toNativeSeparators(failure.path), failure.message));
        m_banner->showMessage(
            WarningBanner::Level::Warning,
            tr("%n image(s) could not be loaded and were skipped (see the Run "
               "Log), e.g. %1: %2",
               nullptr, int(report.newFailures.size()))
                .arg(QDir::toNativeSeparators(report.newFailures.constFirst().path),
                     report.newFailures.constFirst().message));
    }
    Q_EMIT epochFinished(report);
}

void TrainingWorkspace::onFinished(const TrainFinish &finish)
{
    if (!finish.bestCheckpoint.isEmpty())
        m_bestCheckpoint = finish.bestCheckpoint;
    if (!finish.lastCheckpoint.isEmpty())
        m_lastCheckpoint = finish.lastCheckpoint;
    m_predict->setRunCheckpoints(m_bestCheckpoint, m_lastCheckpoint);
    m_mislabel->setCheckpoint(m_bestCheckpoint.isEmpty() ? m_lastCheckpoint : m_bestCheckpoint);
    if (finish.outcome == TrainOutcome::Completed && m_progress->maximum() > 0)
        m_progress->setValue(m_progress->maximum());
    if (m_progress->maximum() == 0)
        m_progress->setRange(0, 1); // not busy any more
    QString text = finish.message;
    if (text.isEmpty()) {
        switch (finish.outcome) {
        case TrainOutcome::Completed:
            text = tr("Finished");
            break;
        case TrainOutcome::Stopped:
            text = tr("Stopped");
            break;
        case TrainOutcome::Failed:
            text = tr("Failed");
            break;
        }
    }
    m_statusLabel->setText(text);
    m_statusLabel->setToolTip(text);
    m_transientStatus = false;
    QString progress = tr("%n epoch(s) done", nullptr, m_epochsDone);
    if (finish.bestValAccuracy >= 0)
        progress += tr(" · best val accuracy %1").arg(percentText(finish.bestValAccuracy));
    m_progressLabel->setText(progress);
    appendLog(text);
    if (finish.bestValAccuracy >= 0)
        appendLog(tr("Best validation accuracy: %1").arg(percentText(finish.bestValAccuracy)));
    if (!m_lastCheckpoint.isEmpty())
        appendLog(tr("Checkpoints: %1")
                      .arg(QDir::toNativeSeparators(QFileInfo(m_lastCheckpoint).absolutePath())));
    if (finish.outcome == TrainOutcome::Failed)
        m_banner->showMessage(WarningBanner::Level::Error, text);
    else if (!finish.skippedImages.isEmpty() && m_banner->isHidden())
        m_banner->showMessage(WarningBanner::Level::Warning,
                              tr("%n image(s) could not be loaded and were skipped (see the Run "
                                 "Log)",
                                 nullptr, int(finish.skippedImages.size())));
    m_openFolderButton->setEnabled(QFileInfo(m_runFolder).isDir());
    setRunning(false);
    Q_EMIT statusMessage(text);
    Q_EMIT runFinished(finish);
}

// ---- Resume ------------------------------------------------------------------------------------

void TrainingWorkspace::resumeInteractive()
{
    if (isRunning() || !hasDataset())
        return;
    ResumeDialog dialog(this);
    dialog.setStartFolder(QFileInfo(defaultRunFolder()).absolutePath());
    if (!m_lastCheckpoint.isEmpty())
        dialog.setCheckpoint(m_lastCheckpoint);
    if (dialog.exec() != QDialog::Accepted)
        return;
    resumeFrom(dialog.checkpoint(), dialog.weightsOnly(), dialog.epochs());
}

bool TrainingWorkspace::resumeFrom(const QString &checkpoint, bool weightsOnly, int epochs)
{
    const Result<CheckpointSummary> summary = summarizeTrainingCheckpoint(checkpoint);
    if (!summary) {
        m_banner->showMessage(WarningBanner::Level::Error, summary.errorMessage());
        return false;
    }
    const TrainConfig form = config();
    TrainConfig resumed = form;
    if (!weightsOnly && !summary->config.isEmpty()) {
        // The run as it was set up (its thread count too: see exactResumeConfig()); this
        // machine's device.
        if (Result<TrainConfig> stored = TrainConfig::fromJson(summary->config); stored.ok())
            resumed = exactResumeConfig(stored.value(), form);
    }
    if (!summary->arch.isEmpty())
        resumed.arch = summary->arch;
    resumed.dataRoot = m_root;
    resumed.valRoot.clear();
    if (!weightsOnly) {
        // The transforms the run was trained with, when it says.
        if (!summary->trainTransforms.isEmpty())
            resumed.trainTransforms = summary->trainTransforms;
        if (!summary->valTransforms.isEmpty())
            resumed.valTransforms = summary->valTransforms;
    }
    resumed.epochs = epochs;
    resumed.resumePath = checkpoint;
    resumed.resumeWeightsOnly = weightsOnly;
    resumed.weightsPath.clear();
    resumed.maxSteps = 0;
    // An exact resume goes on in its own folder (its last.pth, best.pth and metrics); a new run
    // from the weights gets a new one.
    resumed.outDir = weightsOnly ? (form.outDir.isEmpty() ? defaultRunFolder() : form.outDir)
                                 : QFileInfo(checkpoint).absolutePath();
    TrainConfig shown = resumed;
    shown.outDir = form.outDir;
    setConfig(shown);
    return startRun(resumed);
}

// ---- Overlays ----------------------------------------------------------------------------------

Status TrainingWorkspace::overlayRun(const QString &folder)
{
    const Result<RunHistory> history = readRunHistory(folder);
    if (!history)
        return history.error();
    if (history->epochs.isEmpty() && history->steps.isEmpty())
        return Error{tr("“%1” holds no metrics.csv or steps.csv with data")
                         .arg(QDir::toNativeSeparators(folder))};
    using Style = CurveChart::SeriesStyle;
    const QColor color = kOverlayColors[m_overlayCount % kOverlayColors.size()];
    const QColor valColor = color.darker(140);
    ++m_overlayCount;
    const QString name = history->name.isEmpty() ? QFileInfo(folder).fileName() : history->name;
    auto add = [this](CurveChart *chart, const QString &series, const Style &style,
                      const QList<QPointF> &points) {
        const int id = chart->addSeries(series, style);
        chart->setPoints(id, points);
        m_overlays.append({chart, id});
        return id;
    };
    QList<QPointF> loss, lr, trainAcc, valAcc, trainLoss, valLoss, speed;
    for (const StepRecord &step : history->steps) {
        loss.append(QPointF(double(step.step), step.loss));
        lr.append(QPointF(double(step.step), step.lr));
    }
    for (const EpochRecord &epoch : history->epochs) {
        trainAcc.append(QPointF(epoch.epoch, 100.0 * epoch.trainAccuracy));
        valAcc.append(QPointF(epoch.epoch, 100.0 * epoch.valAccuracy));
        trainLoss.append(QPointF(epoch.epoch, epoch.trainLoss));
        valLoss.append(QPointF(epoch.epoch, epoch.valLoss));
        if (epoch.imagesPerSecond > 0)
            speed.append(QPointF(double(epoch.step), epoch.imagesPerSecond));
    }
    if (!loss.isEmpty()) {
        // The raw loss of another run is noise on top of ours: draw its smoothed curve only.
        const int raw = add(m_lossChart, tr("%1 per batch").arg(name), Style{color, 1.0}, loss);
        m_lossChart->setSeriesVisible(raw, false);
        const int smooth = m_lossChart->addSmoothedSeries(raw, tr("%1 smoothed").arg(name),
                                                          Style{color, 1.8, Qt::DashLine});
        m_overlays.append({m_lossChart, smooth});
        add(m_lrChart, name, Style{color, 1.5, Qt::DashLine}, lr);
    }
    if (!trainAcc.isEmpty()) {
        add(m_accuracyChart, tr("%1 train").arg(name), Style{color, 1.8, Qt::DashLine}, trainAcc);
        add(m_accuracyChart, tr("%1 val").arg(name), Style{valColor, 1.8, Qt::DashLine}, valAcc);
        add(m_epochLossChart, tr("%1 train").arg(name), Style{color, 1.8, Qt::DashLine}, trainLoss);
        add(m_epochLossChart, tr("%1 val").arg(name), Style{valColor, 1.8, Qt::DashLine}, valLoss);
    }
    if (!speed.isEmpty())
        add(m_speedChart, name, Style{color, 1.5, Qt::DashLine}, speed);
    Q_EMIT statusMessage(tr("Overlaid %1").arg(name));
    return success();
}

void TrainingWorkspace::overlayRunInteractive()
{
    const QString start = m_runFolder.isEmpty() ? QFileInfo(defaultRunFolder()).absolutePath()
                                                : QFileInfo(m_runFolder).absolutePath();
    const QString folder
        = QFileDialog::getExistingDirectory(this, tr("Overlay an Earlier Run"), start);
    if (folder.isEmpty())
        return;
    const Status status = overlayRun(folder);
    if (!status)
        m_banner->showMessage(WarningBanner::Level::Error, status.errorMessage());
}

void TrainingWorkspace::clearOverlays()
{
    for (const Overlay &overlay : std::as_const(m_overlays))
        if (overlay.chart->hasSeries(overlay.id))
            overlay.chart->removeSeries(overlay.id);
    m_overlays.clear();
    m_overlayCount = 0;
}

} // namespace ifs
