#include "training/evaluationview.h"

#include "checkpoint/checkpointfiles.h"
#include "common/compactsortheader.h"
#include "common/thumbnailloader.h"
#include "common/warningbanner.h"
#include "training/confusionmatrixview.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListView>
#include <QLocale>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>

namespace ifs {

namespace {

const QString kCheckpointFilter = ckpt::checkpointNameFilter();

QString percent(double fraction, int decimals = 1)
{
    return QString::number(100.0 * fraction, 'f', decimals) + u'%';
}

void setupGallery(QListView *view, PredictionListModel *model)
{
    const int iconSize = model->iconSize();
    const int line = view->fontMetrics().lineSpacing();
    // Room for "T-shirt_top → Pullover" on one line (longer names wrap) and "(p=0.93)".
    const QSize item(iconSize + 56, iconSize + 3 * line + 10);
    model->setItemSize(item);
    view->setModel(model);
    view->setViewMode(QListView::IconMode);
    view->setResizeMode(QListView::Adjust);
    view->setMovement(QListView::Static);
    view->setWrapping(true);
    // Uniform sizes keep the view from asking every row (and its thumbnail) for its size; the
    // model's SizeHintRole makes that size the tallest caption's.
    view->setUniformItemSizes(true);
    view->setWordWrap(true);
    view->setIconSize(QSize(iconSize, iconSize));
    view->setGridSize(item + QSize(4, 4));
    view->setTextElideMode(Qt::ElideMiddle);
    view->setSelectionMode(QAbstractItemView::SingleSelection);
    view->setEditTriggers(QAbstractItemView::NoEditTriggers);
}

} // namespace

EvaluationView::EvaluationView(QWidget *parent)
    : QWidget(parent)
    , m_job(new EvaluationJob(this))
    , m_loader(new ThumbnailLoader(this))
{
    setObjectName(QStringLiteral("evaluationView"));

    QHBoxLayout *header = buildHeader();
    m_banner = new WarningBanner(this);

    // Left: the matrix and the images of the cell clicked; right: per-class numbers and the
    // misclassified gallery.
    buildMatrixPane();
    buildClassTable();
    QWidget *wrong = buildMisclassifiedPane();

    m_tabs = new QTabWidget(this);
    m_tabs->setObjectName(QStringLiteral("evaluationTabs"));
    m_tabs->setDocumentMode(true);
    m_tabs->addTab(wrong, tr("Misclassified"));
    m_tabs->addTab(m_classTable, tr("Per class"));

    m_splitter = new QSplitter(Qt::Horizontal, this);
    m_splitter->addWidget(m_leftSplitter);
    m_splitter->addWidget(m_tabs);
    m_splitter->setStretchFactor(0, 5);
    m_splitter->setStretchFactor(1, 4);
    m_splitter->setChildrenCollapsible(false);

    m_emptyLabel = new QLabel(
        tr("<p><b>No evaluation yet.</b></p><p>After each epoch of a run the model is evaluated "
           "on the validation images and shown here: the confusion matrix, per-class precision "
           "and recall, and the images it gets wrong.</p><p>You can also evaluate any checkpoint "
           "with <i>Evaluate Checkpoint…</i>.</p>"),
        this);
    m_emptyLabel->setObjectName(QStringLiteral("evaluationEmpty"));
    m_emptyLabel->setAlignment(Qt::AlignCenter);
    m_emptyLabel->setWordWrap(true);
    m_emptyLabel->setMargin(40);
    m_pages = new QStackedWidget(this);
    m_pages->addWidget(m_emptyLabel);
    m_pages->addWidget(m_splitter);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addLayout(header);
    layout->addWidget(m_banner);
    layout->addWidget(m_pages, 1);

    connectSignals();
    clear();
}

QHBoxLayout *EvaluationView::buildHeader()
{
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("evaluationSummary"));
    m_summary->setTextFormat(Qt::RichText);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_source = new QLabel(this);
    m_source->setObjectName(QStringLiteral("evaluationSource"));
    m_source->setTextInteractionFlags(Qt::TextSelectableByMouse);
    QPalette muted = m_source->palette();
    muted.setColor(QPalette::WindowText, muted.color(QPalette::PlaceholderText));
    m_source->setPalette(muted);
    m_normalize = new QCheckBox(tr("Row %"), this);
    m_normalize->setToolTip(tr("Show each row of the matrix as shares of its true class"));
    m_evaluateButton = new QPushButton(tr("Evaluate Checkpoint…"), this);
    m_evaluateButton->setObjectName(QStringLiteral("evaluateCheckpointButton"));
    m_evaluateButton->setToolTip(tr("Load a checkpoint and evaluate it on the validation images"));
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(180);
    m_progress->setTextVisible(false);
    m_progress->hide();
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setObjectName(QStringLiteral("cancelEvaluationButton"));
    m_cancel->hide();
    auto *header = new QHBoxLayout;
    header->setContentsMargins(8, 6, 8, 2);
    header->addWidget(m_summary);
    header->addSpacing(12);
    header->addWidget(m_source, 1);
    header->addWidget(m_normalize);
    header->addWidget(m_progress);
    header->addWidget(m_cancel);
    header->addWidget(m_evaluateButton);
    return header;
}

void EvaluationView::buildMatrixPane()
{
    m_matrix = new ConfusionMatrixView(this);
    auto *matrixScroll = new QScrollArea(this);
    matrixScroll->setWidget(m_matrix);
    matrixScroll->setWidgetResizable(true);
    matrixScroll->setFrameShape(QFrame::NoFrame);
    m_cellLabel = new QLabel(this);
    m_cellLabel->setObjectName(QStringLiteral("cellLabel"));
    m_cellModel = new PredictionListModel(m_loader, this);
    m_cellModel->setIconSize(84);
    m_cellView = new QListView(this);
    m_cellView->setObjectName(QStringLiteral("cellImages"));
    setupGallery(m_cellView, m_cellModel);
    auto *cellPanel = new QWidget(this);
    auto *cellLayout = new QVBoxLayout(cellPanel);
    cellLayout->setContentsMargins(8, 4, 0, 0);
    cellLayout->addWidget(m_cellLabel);
    cellLayout->addWidget(m_cellView, 1);
    m_leftSplitter = new QSplitter(Qt::Vertical, this);
    m_leftSplitter->addWidget(matrixScroll);
    m_leftSplitter->addWidget(cellPanel);
    m_leftSplitter->setStretchFactor(0, 3);
    m_leftSplitter->setStretchFactor(1, 2);
    m_leftSplitter->setChildrenCollapsible(false);
}

void EvaluationView::buildClassTable()
{
    m_classModel = new ClassMetricsModel(this);
    m_classProxy = new QSortFilterProxyModel(this);
    m_classProxy->setSourceModel(m_classModel);
    m_classProxy->setSortRole(Qt::EditRole);
    m_classTable = new QTableView(this);
    m_classTable->setObjectName(QStringLiteral("classMetricsTable"));
    m_classTable->setHorizontalHeader(new CompactSortHeader(Qt::Horizontal, m_classTable));
    m_classTable->setModel(m_classProxy);
    m_classTable->setSortingEnabled(true);
    m_classTable->sortByColumn(-1, Qt::AscendingOrder);
    m_classTable->setAlternatingRowColors(true);
    m_classTable->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_classTable->verticalHeader()->hide();
    m_classTable->verticalHeader()->setDefaultSectionSize(m_classTable->fontMetrics().height() + 6);
    m_classTable->horizontalHeader()->setSectionResizeMode(ClassMetricsModel::ClassColumn,
                                                           QHeaderView::Stretch);
    for (int column = 1; column < ClassMetricsModel::ColumnCount; ++column)
        m_classTable->horizontalHeader()->setSectionResizeMode(column,
                                                               QHeaderView::ResizeToContents);
}

QWidget *EvaluationView::buildMisclassifiedPane()
{
    m_ranking = new QComboBox(this);
    m_ranking->setObjectName(QStringLiteral("rankingCombo"));
    m_ranking->addItem(tr("Highest loss first"), int(Evaluation::Ranking::HighestLoss));
    m_ranking->addItem(tr("Most confident first"), int(Evaluation::Ranking::MostConfident));
    m_ranking->addItem(tr("Least confident first"), int(Evaluation::Ranking::LeastConfident));
    m_wrongLabel = new QLabel(this);
    m_wrongModel = new PredictionListModel(m_loader, this);
    m_wrongModel->setIconSize(84);
    m_wrongView = new QListView(this);
    m_wrongView->setObjectName(QStringLiteral("misclassifiedImages"));
    setupGallery(m_wrongView, m_wrongModel);
    auto *wrong = new QWidget(this);
    auto *wrongBar = new QHBoxLayout;
    wrongBar->addWidget(m_wrongLabel, 1);
    wrongBar->addWidget(m_ranking);
    auto *wrongLayout = new QVBoxLayout(wrong);
    wrongLayout->setContentsMargins(4, 4, 4, 4);
    wrongLayout->addLayout(wrongBar);
    wrongLayout->addWidget(m_wrongView, 1);
    return wrong;
}

void EvaluationView::connectSignals()
{
    connect(m_matrix, &ConfusionMatrixView::cellClicked, this, &EvaluationView::showCell);
    connect(m_normalize, &QCheckBox::toggled, m_matrix, &ConfusionMatrixView::setNormalized);
    connect(m_ranking, &QComboBox::activated, this, [this] {
        setMisclassifiedRanking(Evaluation::Ranking(m_ranking->currentData().toInt()));
    });
    connect(m_evaluateButton, &QPushButton::clicked, this,
            &EvaluationView::evaluateCheckpointInteractive);
    connect(m_cancel, &QPushButton::clicked, this, &EvaluationView::cancelEvaluation);
    connect(m_job, &EvaluationJob::progressChanged, this,
            [this](qint64 done, qint64 total, const QString &text) {
                m_progress->setRange(0, total > 0 ? 1000 : 0);
                if (total > 0)
                    m_progress->setValue(int(1000 * done / total));
                m_progress->setToolTip(text);
                Q_EMIT statusMessage(text);
            });
    connect(m_job, &EvaluationJob::finished, this,
            [this](std::shared_ptr<const Evaluation> evaluation, const QStringList &notes) {
                setBusy(false);
                const QString source = m_progress->property("checkpoint").toString();
                setEvaluation(
                    std::move(evaluation),
                    tr("%1 on %2").arg(QFileInfo(source).fileName(), m_samplesDescription));
                if (!notes.isEmpty())
                    m_source->setToolTip(notes.join(u'\n'));
            });
    connect(m_job, &EvaluationJob::failed, this, [this](const QString &message) {
        setBusy(false);
        m_banner->showMessage(WarningBanner::Level::Error, message);
        Q_EMIT evaluationFailed(message);
    });
    connect(m_job, &EvaluationJob::cancelled, this, [this] {
        setBusy(false);
        Q_EMIT statusMessage(tr("Evaluation cancelled"));
    });
}

EvaluationView::~EvaluationView() = default;

void EvaluationView::clear()
{
    m_evaluation.reset();
    m_matrix->clear();
    m_cellModel->clear();
    m_wrongModel->clear();
    m_classModel->setMetrics({}, {});
    m_loader->clear();
    m_summary->setText(tr("<b>Evaluation</b>"));
    m_source->clear();
    m_source->setToolTip({});
    m_normalize->setEnabled(false);
    m_banner->dismiss();
    m_pages->setCurrentWidget(m_emptyLabel);
}

void EvaluationView::setValidationSamples(std::vector<LoaderSample> samples,
                                          const QString &description)
{
    if (samples.empty()) {
        setValidationSource({}, description);
        return;
    }
    auto shared = std::make_shared<const std::vector<LoaderSample>>(std::move(samples));
    setValidationSource([shared]() -> Result<std::vector<LoaderSample>> { return *shared; },
                        description);
}

void EvaluationView::setValidationSource(SampleSource source, const QString &description)
{
    m_samples = std::move(source);
    m_samplesDescription = description;
}

void EvaluationView::setEvaluation(std::shared_ptr<const Evaluation> evaluation,
                                   const QString &source)
{
    if (!evaluation) {
        clear();
        return;
    }
    m_evaluation = std::move(evaluation);
    const Evaluation &e = *m_evaluation;
    const QLocale locale;
    m_summary->setText(tr("<b>Accuracy %1</b> &nbsp;·&nbsp; loss %2 &nbsp;·&nbsp; macro-F1 %3 "
                          "&nbsp;·&nbsp; %4 images")
                           .arg(percent(e.accuracy, 2))
                           .arg(e.loss, 0, 'f', 4)
                           .arg(e.macroF1, 0, 'f', 3)
                           .arg(locale.toString(qlonglong(e.predictions.size()))));
    m_source->setText(source);
    m_source->setToolTip({});
    m_normalize->setEnabled(true);
    if (!e.failures.isEmpty()) {
        m_banner->showMessage(
            WarningBanner::Level::Warning,
            tr("%n image(s) could not be evaluated, e.g. %1: %2", nullptr, int(e.failures.size()))
                .arg(QDir::toNativeSeparators(e.failures.constFirst().path),
                     e.failures.constFirst().message));
    } else {
        m_banner->dismiss();
    }

    const auto selected = m_matrix->selectedCell();
    m_matrix->setMatrix(e.classes, e.confusion);
    m_classModel->setMetrics(e.classes, e.perClass);
    setMisclassifiedRanking(Evaluation::Ranking(m_ranking->currentData().toInt()));
    if (selected.first >= 0 && selected.first < e.classes.size()
        && selected.second < e.classes.size()) {
        showCell(selected.first, selected.second);
    } else {
        m_cellModel->clear();
        m_cellLabel->setText(tr("Click a cell of the matrix to see its images."));
    }
    if (!m_sized) {
        // The matrix as large as it likes (up to two thirds), the cell's images below it.
        m_leftSplitter->setSizes({m_matrix->sizeHint().height() + 8, 260});
        m_sized = true;
    }
    m_pages->setCurrentWidget(m_splitter);
    Q_EMIT evaluationShown();
}

void EvaluationView::setMisclassifiedRanking(Evaluation::Ranking ranking)
{
    const int index = m_ranking->findData(int(ranking));
    if (index >= 0)
        m_ranking->setCurrentIndex(index);
    if (!m_evaluation) {
        m_wrongModel->clear();
        return;
    }
    const QList<SamplePrediction> wrong = m_evaluation->misclassified(ranking);
    m_wrongModel->setPredictions(wrong, m_evaluation->classes);
    const QLocale locale;
    m_wrongLabel->setText(tr("%1 of %2 images misclassified")
                              .arg(locale.toString(qlonglong(wrong.size())),
                                   locale.toString(qlonglong(m_evaluation->predictions.size()))));
    m_tabs->setTabText(0, tr("Misclassified (%1)").arg(locale.toString(qlonglong(wrong.size()))));
}

void EvaluationView::showCell(int trueClass, int predictedClass)
{
    if (!m_evaluation)
        return;
    const QStringList &classes = m_evaluation->classes;
    if (trueClass < 0 || predictedClass < 0 || trueClass >= classes.size()
        || predictedClass >= classes.size())
        return;
    m_matrix->setSelectedCell(trueClass, predictedClass);
    const QList<SamplePrediction> cell = m_evaluation->cell(trueClass, predictedClass);
    m_cellModel->setPredictions(cell, classes);
    const QString count = tr("%n image(s)", nullptr, int(cell.size()));
    m_cellLabel->setText(trueClass == predictedClass
                             ? tr("<b>%1</b> predicted right: %2").arg(classes[trueClass], count)
                             : tr("True <b>%1</b> predicted as <b>%2</b>: %3")
                                   .arg(classes[trueClass], classes[predictedClass], count));
}

void EvaluationView::evaluateCheckpointInteractive()
{
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Evaluate Checkpoint"), m_checkpointFolder,
        tr("Checkpoints (%1);;All files (*)").arg(kCheckpointFilter));
    if (!path.isEmpty())
        evaluateCheckpoint(path);
}

void EvaluationView::evaluateCheckpoint(const QString &checkpoint)
{
    if (!m_samples) {
        const QString message = tr("No validation images to evaluate on: open a dataset first.");
        m_banner->showMessage(WarningBanner::Level::Error, message);
        Q_EMIT evaluationFailed(message);
        return;
    }
    m_banner->dismiss();
    m_progress->setProperty("checkpoint", checkpoint);
    setBusy(true);
    m_job->start(checkpoint, m_samples, m_options);
    Q_EMIT statusMessage(
        tr("Evaluating %1 on %2…").arg(QFileInfo(checkpoint).fileName(), m_samplesDescription));
}

void EvaluationView::cancelEvaluation()
{
    m_job->requestCancel();
}

bool EvaluationView::isEvaluating() const
{
    return m_job->isRunning();
}

void EvaluationView::setBusy(bool busy)
{
    m_progress->setRange(0, 0);
    m_progress->setVisible(busy);
    m_cancel->setVisible(busy);
    m_evaluateButton->setEnabled(!busy);
}

} // namespace ifs
