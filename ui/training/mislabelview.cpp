#include "training/mislabelview.h"

#include "common/pixmaps.h"
#include "common/thumbnailloader.h"

#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSet>
#include <QTableWidget>
#include <QVBoxLayout>

namespace ifs {

namespace {
enum Column {
    ImageColumn,
    SplitColumn,
    GivenColumn,
    PredictedColumn,
    ConfidenceColumn,
    LossColumn
};
constexpr int kShownRows = 500; // the worst first; the rest are the model's confident agreement
} // namespace

MislabelView::MislabelView(QWidget *parent)
    : QWidget(parent)
    , m_loader(new ThumbnailLoader(this))
{
    setObjectName(QStringLiteral("mislabelView"));
    m_loader->setThumbnailSize(48);
    m_scan = new QPushButton(tr("Find Likely Mislabelled"), this);
    m_scan->setObjectName(QStringLiteral("mislabelScanButton"));
    m_target = new QComboBox(this);
    m_target->setObjectName(QStringLiteral("relabelTargetCombo"));
    m_target->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_relabel = new QPushButton(tr("Relabel"), this);
    m_relabel->setObjectName(QStringLiteral("relabelButton"));
    m_relabel->setToolTip(tr("Move the selected images into the chosen class's folder"));
    m_quarantine = new QPushButton(tr("Quarantine"), this);
    m_quarantine->setObjectName(QStringLiteral("mislabelQuarantineButton"));
    m_undoButton = new QPushButton(tr("Undo"), this);
    m_undoButton->setObjectName(QStringLiteral("mislabelUndoButton"));
    m_status = new QLabel(tr("Rank every image by the model's confidence in its label."), this);
    m_status->setWordWrap(true);
    m_table = new QTableWidget(0, 6, this);
    m_table->setObjectName(QStringLiteral("mislabelTable"));
    m_table->setHorizontalHeaderLabels(
        {tr("Image"), tr("Split"), tr("Given"), tr("Predicted"), tr("p(given)"), tr("Loss")});
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setIconSize(QSize(40, 40));
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setSectionResizeMode(ImageColumn, QHeaderView::Stretch);

    auto *bar = new QHBoxLayout;
    bar->addWidget(m_scan);
    bar->addWidget(new QLabel(tr("Move to:"), this));
    bar->addWidget(m_target);
    bar->addWidget(m_relabel);
    bar->addWidget(m_quarantine);
    bar->addWidget(m_undoButton);
    bar->addStretch(1);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addLayout(bar);
    layout->addWidget(m_status);
    layout->addWidget(m_table, 1);

    m_scanJob.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-evaluation"), 2));
    m_scanJob.onFinished([this](const MislabelScan &result) {
        showScan(result);
        Q_EMIT scanned();
    });
    m_scanJob.onFailed([this](const Error &error) {
        m_status->setText(error.message);
        Q_EMIT failed(error.message);
    });
    m_fixJob.onFailed([this](const Error &error) {
        m_status->setText(error.message);
        Q_EMIT failed(error.message);
    });
    connect(m_scan, &QPushButton::clicked, this, [this] {
        m_lastFix.clear();
        scan();
    });
    connect(m_relabel, &QPushButton::clicked, this, [this] {
        relabelSelected(m_target->currentIndex() <= 0 ? QString() : m_target->currentText());
    });
    connect(m_quarantine, &QPushButton::clicked, this, &MislabelView::quarantineSelected);
    connect(m_undoButton, &QPushButton::clicked, this, &MislabelView::undoLast);
    connect(m_loader, &ThumbnailLoader::thumbnailReady, this,
            [this](const QString &path, const QImage &image) {
                for (int row = 0; row < m_table->rowCount(); ++row) {
                    QTableWidgetItem *item = m_table->item(row, ImageColumn);
                    if (item && item->data(Qt::UserRole).toString() == path)
                        item->setIcon(QIcon(fittedPixmap(image, 40)));
                }
            });
    m_undoButton->setEnabled(false);
}

MislabelView::~MislabelView() = default;

void MislabelView::scan()
{
    if (m_root.isEmpty() || m_checkpoint.isEmpty()) {
        const QString message = tr("Choose a dataset and a checkpoint first.");
        m_status->setText(message);
        Q_EMIT failed(message);
        return;
    }
    m_status->setText(tr("Scoring every image with %1…").arg(QFileInfo(m_checkpoint).fileName()));
    m_scanJob.start([root = m_root, checkpoint = m_checkpoint,
                     options = m_options](JobContext<NoProgress> &context) -> Result<MislabelScan> {
        Result<Classifier> classifier = Classifier::load(checkpoint, options);
        if (!classifier)
            return classifier.error();
        return scoreDatasetLabels(classifier.value(), root, MislabelRanking::SelfConfidence, {},
                                  context.cancelFlag());
    });
}

void MislabelView::showScan(const MislabelScan &scan)
{
    m_classes = scan.classes;
    m_candidates = scan.ranked;
    const QString previous = m_target->currentText();
    m_target->clear();
    m_target->addItem(tr("Predicted class"));
    m_target->addItems(m_classes);
    m_target->setCurrentIndex(std::max(0, int(m_target->findText(previous))));
    m_loader->clear();
    const int rows = int(std::min<qsizetype>(kShownRows, m_candidates.size()));
    m_table->clearContents();
    m_table->setRowCount(rows);
    for (int row = 0; row < rows; ++row) {
        const MislabelCandidate &c = m_candidates[row];
        auto *image = new QTableWidgetItem(QFileInfo(c.path).fileName());
        image->setData(Qt::UserRole, c.path);
        image->setToolTip(QDir::toNativeSeparators(c.path));
        m_table->setItem(row, ImageColumn, image);
        m_table->setItem(row, SplitColumn, new QTableWidgetItem(c.split));
        m_table->setItem(row, GivenColumn, new QTableWidgetItem(m_classes.value(c.label)));
        m_table->setItem(row, PredictedColumn,
                         new QTableWidgetItem(QStringLiteral("%1  %2%").arg(
                             m_classes.value(c.predicted),
                             QString::number(100.0 * c.predictedProbability, 'f', 1))));
        m_table->setItem(row, ConfidenceColumn,
                         new QTableWidgetItem(QString::number(c.selfConfidence, 'f', 4)));
        m_table->setItem(row, LossColumn, new QTableWidgetItem(QString::number(c.loss, 'f', 2)));
        m_loader->request(c.path, -row);
    }
    QString text
        = tr("%1 images scored; the %2 most doubtful first").arg(m_candidates.size()).arg(rows);
    if (!m_lastFix.isEmpty())
        text += QStringLiteral(" · ") + m_lastFix;
    m_status->setText(text);
}

QStringList MislabelView::selectedPaths() const
{
    QStringList paths;
    QSet<int> rows;
    for (const QModelIndex &index : m_table->selectionModel()->selectedIndexes())
        rows.insert(index.row());
    QList<int> sorted(rows.cbegin(), rows.cend());
    std::sort(sorted.begin(), sorted.end());
    for (const int row : sorted)
        if (const QTableWidgetItem *item = m_table->item(row, ImageColumn))
            paths.append(item->data(Qt::UserRole).toString());
    return paths;
}

void MislabelView::relabelSelected(const QString &targetClass)
{
    QList<RelabelMove> moves;
    const QStringList paths = selectedPaths();
    for (const MislabelCandidate &c : std::as_const(m_candidates))
        if (paths.contains(c.path))
            moves.append(
                {c.path, targetClass.isEmpty() ? m_classes.value(c.predicted) : targetClass});
    runFix(
        [root = m_root, moves] { return relabelFiles(root, moves, defaultQuarantineFolder(root)); },
        tr("Relabelled"));
}

void MislabelView::quarantineSelected()
{
    runFix(
        [root = m_root, paths = selectedPaths()] {
            return quarantineFiles(root, paths, defaultQuarantineFolder(root));
        },
        tr("Quarantined"));
}

void MislabelView::undoLast()
{
    if (m_undo.isEmpty())
        return;
    const QuarantineBatch batch = m_undo.takeLast();
    m_fixJob.onFinished([this](const QuarantineBatch &done) {
        const QString message = tr("Moved %n file(s) back", nullptr, int(done.entries.size()));
        m_undoButton->setEnabled(!m_undo.isEmpty());
        m_status->setText(message);
        m_lastFix = message;
        Q_EMIT fixed(message);
        Q_EMIT datasetChanged();
        scan();
    });
    m_fixJob.start([batch](JobContext<NoProgress> &) -> Result<QuarantineBatch> {
        if (Status undone = undoQuarantine(batch); !undone)
            return undone.error();
        return batch;
    });
}

void MislabelView::runFix(std::function<Result<QuarantineBatch>()> fix, const QString &what)
{
    m_fixJob.onFinished([this, what](const QuarantineBatch &batch) {
        m_undo.append(batch);
        m_undoButton->setEnabled(true);
        QString message = tr("%1 %n file(s)", nullptr, int(batch.entries.size())).arg(what);
        if (batch.relabel && batch.entries.size() == 1)
            message
                += QStringLiteral(": %1 → %2")
                       .arg(QDir(m_root).relativeFilePath(batch.entries.first().originalPath),
                            QDir(m_root).relativeFilePath(batch.entries.first().quarantinedPath));
        m_status->setText(message);
        m_lastFix = message;
        Q_EMIT fixed(message);
        Q_EMIT datasetChanged();
        scan();
    });
    m_fixJob.start([fix = std::move(fix)](JobContext<NoProgress> &) -> Result<QuarantineBatch> {
        return fix();
    });
}

} // namespace ifs
