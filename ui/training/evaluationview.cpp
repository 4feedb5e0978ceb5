#include "training/evaluationview.h"

#include "common/thumbnailloader.h"
#include "common/warningbanner.h"
#include "training/confusionmatrixview.h"
#include "training/trainingjobs.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListView>
#include <QLocale>
#include <QMimeData>
#include <QPainter>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>

namespace ifs {

namespace {

const QString kCheckpointFilter = QStringLiteral("*.pt *.pth *.tar *.ckpt *.bin *.safetensors");

QString percent(double fraction, int decimals = 1)
{
    return QString::number(100.0 * fraction, 'f', decimals) + u'%';
}

/// A pixmap `side` pixels at most: shrunk smoothly, or enlarged by a whole factor without
/// smoothing (28 × 28 Fashion-MNIST digits stay crisp).
QPixmap fitted(const QImage &image, int side)
{
    if (image.isNull())
        return {};
    const int longest = std::max(image.width(), image.height());
    if (longest > side)
        return QPixmap::fromImage(
            image.scaled(side, side, Qt::KeepAspectRatio, Qt::SmoothTransformation));
    const int factor = std::max(1, side / std::max(1, longest));
    return QPixmap::fromImage(image.scaled(image.width() * factor, image.height() * factor,
                                           Qt::IgnoreAspectRatio, Qt::FastTransformation));
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

// ------------------------------------------------------------------------------------------------
// PredictionListModel

PredictionListModel::PredictionListModel(ThumbnailLoader *loader, QObject *parent)
    : QAbstractListModel(parent)
    , m_loader(loader)
{
    m_pixmaps.setMaxCost(4000);
    setIconSize(m_iconSize);
    connect(m_loader, &ThumbnailLoader::thumbnailReady, this, &PredictionListModel::onThumbnail);
}

void PredictionListModel::setIconSize(int pixels)
{
    beginResetModel();
    m_iconSize = pixels;
    m_pixmaps.clear();
    m_placeholder = QPixmap(pixels, pixels);
    m_placeholder.fill(Qt::transparent);
    QPainter painter(&m_placeholder);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(Qt::NoPen);
    painter.setBrush(QColor(128, 128, 128, 40));
    painter.drawRoundedRect(QRectF(4, 4, pixels - 8, pixels - 8), 6, 6);
    endResetModel();
}

void PredictionListModel::setPredictions(const QList<SamplePrediction> &predictions,
                                         const QStringList &classes)
{
    beginResetModel();
    m_predictions = predictions;
    m_classes = classes;
    m_rowsOfPath.clear();
    for (int row = 0; row < m_predictions.size(); ++row)
        m_rowsOfPath[m_predictions[row].path].append(row);
    endResetModel();
}

void PredictionListModel::clear()
{
    setPredictions({}, {});
}

QString PredictionListModel::className(int index) const
{
    return index >= 0 && index < m_classes.size() ? m_classes[index] : QString::number(index);
}

QString PredictionListModel::caption(const SamplePrediction &prediction) const
{
    if (prediction.correct())
        return tr("%1 ✓\n(p=%2)")
            .arg(className(prediction.label))
            .arg(prediction.confidence, 0, 'f', 2);
    return tr("%1 → %2\n(p=%3)")
        .arg(className(prediction.label), className(prediction.predicted))
        .arg(prediction.confidence, 0, 'f', 2);
}

int PredictionListModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_predictions.size());
}

QVariant PredictionListModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const SamplePrediction &prediction = m_predictions[index.row()];
    switch (role) {
    case Qt::DisplayRole:
        return caption(prediction);
    case Qt::DecorationRole:
        if (const QPixmap *pixmap = m_pixmaps.object(prediction.path))
            return *pixmap;
        // Decoded on the loader's threads; dataChanged() follows.
        m_loader->request(prediction.path);
        return m_placeholder;
    case Qt::SizeHintRole:
        return m_itemSize.isValid() ? QVariant(m_itemSize) : QVariant();
    case Qt::ToolTipRole:
        return tr("%1\ntrue: %2 (p=%3)\npredicted: %4 (p=%5)\nloss: %6")
            .arg(QDir::toNativeSeparators(prediction.path), className(prediction.label))
            .arg(prediction.labelProbability, 0, 'f', 3)
            .arg(className(prediction.predicted))
            .arg(prediction.confidence, 0, 'f', 3)
            .arg(prediction.loss, 0, 'f', 3);
    case PathRole:
        return prediction.path;
    case LossRole:
        return prediction.loss;
    case ConfidenceRole:
        return prediction.confidence;
    case CorrectRole:
        return prediction.correct();
    default:
        return {};
    }
}

void PredictionListModel::onThumbnail(const QString &path, const QImage &image)
{
    const auto it = m_rowsOfPath.constFind(path);
    if (it == m_rowsOfPath.cend())
        return;
    m_pixmaps.insert(path, new QPixmap(fitted(image, m_iconSize)));
    for (int row : *it)
        Q_EMIT dataChanged(index(row), index(row), {Qt::DecorationRole});
}

// ------------------------------------------------------------------------------------------------
// ClassMetricsModel

void ClassMetricsModel::setMetrics(const QStringList &classes, const QList<ClassMetrics> &metrics)
{
    beginResetModel();
    m_classes = classes;
    m_metrics = metrics;
    endResetModel();
}

int ClassMetricsModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(std::min(m_classes.size(), m_metrics.size()));
}

int ClassMetricsModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ClassMetricsModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const ClassMetrics &m = m_metrics[index.row()];
    if (role == Qt::TextAlignmentRole)
        return index.column() == ClassColumn ? QVariant(Qt::AlignLeft | Qt::AlignVCenter)
                                             : QVariant(Qt::AlignRight | Qt::AlignVCenter);
    if (role != Qt::DisplayRole && role != Qt::EditRole)
        return {};
    const bool display = role == Qt::DisplayRole;
    switch (index.column()) {
    case ClassColumn:
        return m_classes[index.row()];
    case PrecisionColumn:
        return display ? QVariant(QString::number(m.precision, 'f', 3)) : QVariant(m.precision);
    case RecallColumn:
        return display ? QVariant(QString::number(m.recall, 'f', 3)) : QVariant(m.recall);
    case F1Column:
        return display ? QVariant(QString::number(m.f1, 'f', 3)) : QVariant(m.f1);
    case SupportColumn:
        return display ? QVariant(QLocale().toString(m.support)) : QVariant(m.support);
    case PredictedColumn:
        return display ? QVariant(QLocale().toString(m.predictedCount))
                       : QVariant(m.predictedCount);
    default:
        return {};
    }
}

QVariant ClassMetricsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return QAbstractTableModel::headerData(section, orientation, role);
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case PrecisionColumn:
            return tr("Of the images predicted as this class, the share right");
        case RecallColumn:
            return tr("Of the images of this class, the share found");
        case F1Column:
            return tr("Harmonic mean of precision and recall");
        case SupportColumn:
            return tr("Images of this class evaluated");
        case PredictedColumn:
            return tr("Images predicted as this class");
        default:
            return {};
        }
    }
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case ClassColumn:
        return tr("Class");
    case PrecisionColumn:
        return tr("Precision");
    case RecallColumn:
        return tr("Recall");
    case F1Column:
        return tr("F1");
    case SupportColumn:
        return tr("Support");
    case PredictedColumn:
        return tr("Predicted");
    default:
        return {};
    }
}

// ------------------------------------------------------------------------------------------------
// EvaluationView

EvaluationView::EvaluationView(QWidget *parent)
    : QWidget(parent)
    , m_job(new EvaluationJob(this))
    , m_loader(new ThumbnailLoader(this))
{
    setObjectName(QStringLiteral("evaluationView"));

    // Header: the numbers, where they come from, and evaluating a checkpoint.
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

    m_banner = new WarningBanner(this);

    // Left: the matrix, and the images of the cell clicked.
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

    // Right: per-class numbers and the misclassified gallery.
    m_classModel = new ClassMetricsModel(this);
    m_classProxy = new QSortFilterProxyModel(this);
    m_classProxy->setSourceModel(m_classModel);
    m_classProxy->setSortRole(Qt::EditRole);
    m_classTable = new QTableView(this);
    m_classTable->setObjectName(QStringLiteral("classMetricsTable"));
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
    clear();
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

// ------------------------------------------------------------------------------------------------
// PredictPanel

namespace {
enum CheckpointKind { BestKind, LastKind, OtherKind, ChooseKind };
constexpr int kKindRole = Qt::UserRole + 1;
} // namespace

PredictPanel::PredictPanel(QWidget *parent)
    : QWidget(parent)
    , m_job(new PredictJob(this))
    , m_loader(new ThumbnailLoader(this))
{
    setObjectName(QStringLiteral("predictPanel"));
    setAcceptDrops(true);
    m_loader->setThumbnailSize(64);

    m_checkpointCombo = new QComboBox(this);
    m_checkpointCombo->setObjectName(QStringLiteral("predictCheckpointCombo"));
    m_checkpointCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_checkpointLabel = new QLabel(this);
    m_checkpointLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_checkpointLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_addImages = new QPushButton(tr("Predict Images…"), this);
    m_addImages->setObjectName(QStringLiteral("predictImagesButton"));
    m_addFolder = new QPushButton(tr("Predict Folder…"), this);
    m_addFolder->setObjectName(QStringLiteral("predictFolderButton"));
    m_topk = new QSpinBox(this);
    m_topk->setObjectName(QStringLiteral("topkSpin"));
    m_topk->setRange(1, 20);
    m_topk->setValue(5);
    m_topk->setPrefix(tr("top-"));
    m_topk->setToolTip(tr("How many classes to list per image, most likely first"));
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 0);
    m_progress->setMaximumWidth(120);
    m_progress->setTextVisible(false);
    m_progress->hide();
    m_status = new QLabel(tr("Choose images or a folder, or drop them here."), this);
    m_status->setObjectName(QStringLiteral("predictStatus"));
    m_status->setWordWrap(true);

    auto *top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("Checkpoint:"), this));
    top->addWidget(m_checkpointCombo);
    top->addWidget(m_checkpointLabel, 1);
    auto *actions = new QHBoxLayout;
    actions->addWidget(m_addImages);
    actions->addWidget(m_addFolder);
    actions->addWidget(m_topk);
    actions->addWidget(m_progress);
    actions->addWidget(m_status, 1);

    m_table = new QTableWidget(this);
    m_table->setObjectName(QStringLiteral("predictTable"));
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setIconSize(QSize(48, 48));
    m_table->verticalHeader()->hide();
    m_table->verticalHeader()->setDefaultSectionSize(54);
    m_table->setAlternatingRowColors(true);
    m_table->horizontalHeader()->setStretchLastSection(false);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 8, 8, 8);
    layout->addLayout(top);
    layout->addLayout(actions);
    layout->addWidget(m_table, 1);

    connect(m_checkpointCombo, &QComboBox::activated, this, [this] {
        if (m_checkpointCombo->currentData(kKindRole).toInt() == ChooseKind)
            chooseCheckpoint();
        else
            updateCheckpointChoice();
    });
    connect(m_addImages, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(
            this, tr("Predict Images"), m_startFolder,
            tr("Images (*.jpg *.jpeg *.png *.ppm *.bmp *.pgm *.tif *.tiff *.webp);;"
               "All files (*)"));
        if (!files.isEmpty()) {
            m_startFolder = QFileInfo(files.constFirst()).absolutePath();
            predict(files);
        }
    });
    connect(m_addFolder, &QPushButton::clicked, this, [this] {
        const QString folder
            = QFileDialog::getExistingDirectory(this, tr("Predict a Folder"), m_startFolder);
        if (!folder.isEmpty()) {
            m_startFolder = folder;
            predict({folder});
        }
    });
    connect(m_topk, &QSpinBox::valueChanged, this, [this] {
        if (!m_paths.isEmpty())
            predict(m_paths);
    });
    connect(m_job, &PredictJob::finished, this, &PredictPanel::showPredictions);
    connect(m_job, &PredictJob::failed, this, [this](const QString &message) {
        m_progress->hide();
        m_status->setText(message);
        Q_EMIT predictionFailed(message);
    });
    connect(m_loader, &ThumbnailLoader::thumbnailReady, this,
            [this](const QString &path, const QImage &image) {
                const int row = m_rowOfPath.value(path, -1);
                if (row >= 0 && m_table->item(row, 0))
                    m_table->item(row, 0)->setIcon(QIcon(fitted(image, 48)));
            });
    setRunCheckpoints({}, {});
}

PredictPanel::~PredictPanel() = default;

void PredictPanel::setRunCheckpoints(const QString &best, const QString &last)
{
    m_best = best;
    m_last = last;
    const int previous = m_checkpointCombo->currentData(kKindRole).toInt();
    const QSignalBlocker blocker(m_checkpointCombo);
    m_checkpointCombo->clear();
    if (!best.isEmpty())
        m_checkpointCombo->addItem(tr("Best of this run"), best);
    if (!best.isEmpty())
        m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, BestKind, kKindRole);
    if (!last.isEmpty()) {
        m_checkpointCombo->addItem(tr("Last of this run"), last);
        m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, LastKind, kKindRole);
    }
    if (!m_other.isEmpty()) {
        m_checkpointCombo->addItem(QFileInfo(m_other).fileName(), m_other);
        m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, OtherKind, kKindRole);
    }
    m_checkpointCombo->addItem(tr("Choose File…"));
    m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, ChooseKind, kKindRole);
    int index = m_checkpointCombo->findData(previous, kKindRole);
    if (index < 0 || previous == ChooseKind)
        index = 0;
    m_checkpointCombo->setCurrentIndex(index);
    updateCheckpointChoice();
}

void PredictPanel::setCheckpoint(const QString &path)
{
    m_other = path;
    setRunCheckpoints(m_best, m_last);
    m_checkpointCombo->setCurrentIndex(m_checkpointCombo->findData(OtherKind, kKindRole));
    updateCheckpointChoice();
}

QString PredictPanel::checkpoint() const
{
    return m_checkpointCombo->currentData().toString();
}

void PredictPanel::chooseCheckpoint()
{
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Checkpoint for Prediction"),
        m_other.isEmpty() ? (m_best.isEmpty() ? QString() : QFileInfo(m_best).absolutePath())
                          : QFileInfo(m_other).absolutePath(),
        tr("Checkpoints (%1);;All files (*)").arg(kCheckpointFilter));
    if (path.isEmpty()) {
        setRunCheckpoints(m_best, m_last); // back to what was chosen before
        return;
    }
    setCheckpoint(path);
}

void PredictPanel::updateCheckpointChoice()
{
    const QString path = checkpoint();
    m_checkpointLabel->setText(path.isEmpty() ? tr("none yet: train, or choose a file")
                                              : QDir::toNativeSeparators(path));
    m_checkpointLabel->setToolTip(QDir::toNativeSeparators(path));
    m_addImages->setEnabled(!path.isEmpty());
    m_addFolder->setEnabled(!path.isEmpty());
}

void PredictPanel::setTopK(int k)
{
    m_topk->setValue(k);
}

int PredictPanel::topK() const
{
    return m_topk->value();
}

bool PredictPanel::isPredicting() const
{
    return m_job->isRunning();
}

void PredictPanel::predict(const QStringList &paths)
{
    const QString path = checkpoint();
    if (path.isEmpty()) {
        const QString message = tr("No checkpoint: train a model or choose a checkpoint file.");
        m_status->setText(message);
        Q_EMIT predictionFailed(message);
        return;
    }
    m_paths = paths;
    m_progress->show();
    m_status->setText(tr("Predicting with %1…").arg(QFileInfo(path).fileName()));
    m_job->start(path, paths, m_topk->value(), m_options);
}

void PredictPanel::showPredictions(const QList<ImagePrediction> &predictions,
                                   const QStringList &classes, const QStringList &notes)
{
    m_progress->hide();
    m_loader->clear();
    m_rowOfPath.clear();
    int k = 1;
    for (const ImagePrediction &prediction : predictions)
        k = std::max(k, int(prediction.top.size()));
    m_table->clear();
    m_table->setRowCount(int(predictions.size()));
    m_table->setColumnCount(1 + k);
    QStringList headers{tr("Image")};
    for (int i = 1; i <= k; ++i)
        headers.append(i == 1 ? tr("Prediction") : tr("#%1").arg(i));
    m_table->setHorizontalHeaderLabels(headers);
    int failed = 0;
    for (int row = 0; row < predictions.size(); ++row) {
        const ImagePrediction &prediction = predictions[row];
        auto *image = new QTableWidgetItem(QFileInfo(prediction.path).fileName());
        image->setToolTip(QDir::toNativeSeparators(prediction.path));
        image->setData(Qt::UserRole, prediction.path);
        m_table->setItem(row, 0, image);
        m_rowOfPath.insert(prediction.path, row);
        m_loader->request(prediction.path, -row); // the first rows first
        if (!prediction.error.isEmpty()) {
            ++failed;
            auto *error = new QTableWidgetItem(prediction.error);
            error->setForeground(QColor(0xc0, 0x39, 0x2b));
            error->setToolTip(prediction.error);
            m_table->setItem(row, 1, error);
            continue;
        }
        for (int i = 0; i < prediction.top.size(); ++i) {
            const auto &[classIndex, probability] = prediction.top[i];
            const QString name = classIndex >= 0 && classIndex < classes.size()
                ? classes[classIndex]
                : QString::number(classIndex);
            auto *item
                = new QTableWidgetItem(QStringLiteral("%1  %2").arg(name, percent(probability)));
            QColor shade(0x4c, 0x9b, 0xe8);
            shade.setAlphaF(0.08f + 0.6f * probability);
            item->setBackground(shade);
            item->setData(Qt::UserRole, classIndex);
            item->setData(Qt::UserRole + 1, probability);
            if (i == 0) {
                QFont bold = item->font();
                bold.setBold(true);
                item->setFont(bold);
            }
            m_table->setItem(row, 1 + i, item);
        }
    }
    m_table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    for (int column = 1; column <= k; ++column)
        m_table->horizontalHeader()->setSectionResizeMode(column, QHeaderView::ResizeToContents);
    QString text = tr("%n image(s) predicted", nullptr, int(predictions.size()));
    if (failed > 0)
        text += tr("; %n could not be read", nullptr, failed);
    if (!notes.isEmpty())
        text += QStringLiteral(" · ") + notes.join(QStringLiteral(" · "));
    m_status->setText(text);
    Q_EMIT predictionsShown();
}

void PredictPanel::dragEnterEvent(QDragEnterEvent *event)
{
    const QList<QUrl> urls = event->mimeData()->urls();
    if (!urls.isEmpty() && !checkpoint().isEmpty()
        && std::all_of(urls.cbegin(), urls.cend(),
                       [](const QUrl &url) { return url.isLocalFile(); }))
        event->acceptProposedAction();
}

void PredictPanel::dropEvent(QDropEvent *event)
{
    QStringList paths;
    for (const QUrl &url : event->mimeData()->urls())
        if (url.isLocalFile())
            paths.append(url.toLocalFile());
    if (paths.isEmpty())
        return;
    event->acceptProposedAction();
    predict(paths);
}

} // namespace ifs
