#include "datasets/healthpanel.h"

#include "datasets/duplicatepairview.h"
#include "datasets/healthfiltermodel.h"
#include "datasets/healthreportmodel.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLocale>
#include <QMenu>
#include <QMessageBox>
#include <QPainter>
#include <QPainterPath>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QSplitter>
#include <QStackedWidget>
#include <QStyledItemDelegate>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <exception>
#include <map>

namespace ifs {

namespace {

using Kind = HealthFinding::Kind;
using Severity = HealthFinding::Severity;

// Filter combo item data: one int per entry.
constexpr int kFilterAll = -1;
constexpr int kFilterSeverityBase = 0x100;
constexpr int kFilterKindBase = 0x200;

// Most serious first; the order of the summary and of the kind filters.
constexpr std::array kKindOrder = {Kind::Unreadable,     Kind::Truncated,      Kind::ZeroByte,
                                   Kind::HugeDimensions, Kind::WrongExtension, Kind::UnusualMode,
                                   Kind::TinyDimensions, Kind::Duplicate,      Kind::NearDuplicate};

QString number(int64_t n)
{
    return QLocale().toString(qlonglong(n));
}

QString kindPhrase(Kind kind, int n)
{
    const QString count = number(n);
    const bool one = n == 1;
    switch (kind) {
    case Kind::Unreadable:
        return HealthPanel::tr("%1 unreadable").arg(count);
    case Kind::Truncated:
        return HealthPanel::tr("%1 truncated").arg(count);
    case Kind::ZeroByte:
        return one ? HealthPanel::tr("1 empty file") : HealthPanel::tr("%1 empty files").arg(count);
    case Kind::HugeDimensions:
        return HealthPanel::tr("%1 huge").arg(count);
    case Kind::TinyDimensions:
        return HealthPanel::tr("%1 tiny").arg(count);
    case Kind::UnusualMode:
        return one ? HealthPanel::tr("1 unusual mode")
                   : HealthPanel::tr("%1 unusual modes").arg(count);
    case Kind::WrongExtension:
        return one ? HealthPanel::tr("1 wrong extension")
                   : HealthPanel::tr("%1 wrong extensions").arg(count);
    case Kind::Duplicate:
        return one ? HealthPanel::tr("1 duplicate") : HealthPanel::tr("%1 duplicates").arg(count);
    case Kind::NearDuplicate:
        return one ? HealthPanel::tr("1 near-duplicate")
                   : HealthPanel::tr("%1 near-duplicates").arg(count);
    }
    return {};
}

QString filesPhrase(int n)
{
    return n == 1 ? HealthPanel::tr("1 file") : HealthPanel::tr("%1 files").arg(number(n));
}

QPixmap paintSuccessPixmap(int size, qreal dpr)
{
    QPixmap pixmap(QSize(size, size) * dpr);
    pixmap.setDevicePixelRatio(dpr);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(Qt::NoPen);
    painter.setBrush(QColor(0x27, 0xae, 0x60));
    painter.drawEllipse(QRectF(1, 1, size - 2, size - 2));
    QPen pen(Qt::white, size * 0.1, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin);
    painter.setPen(pen);
    painter.setBrush(Qt::NoBrush);
    QPainterPath check;
    check.moveTo(size * 0.29, size * 0.52);
    check.lineTo(size * 0.44, size * 0.67);
    check.lineTo(size * 0.72, size * 0.36);
    painter.drawPath(check);
    return pixmap;
}

// Paths lose their middle (the file name stays), sentences their end.
class ElidingDelegate : public QStyledItemDelegate
{
public:
    using QStyledItemDelegate::QStyledItemDelegate;

protected:
    void initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const override
    {
        QStyledItemDelegate::initStyleOption(option, index);
        option->textElideMode
            = index.column() == HealthReportModel::FileColumn ? Qt::ElideMiddle : Qt::ElideRight;
    }
};

/// A word-wrapped label centred in two thirds of the width.
QHBoxLayout *centred(QLabel *label)
{
    auto row = new QHBoxLayout;
    row->addStretch(1);
    row->addWidget(label, 4);
    row->addStretch(1);
    return row;
}

QString duration(double seconds)
{
    if (seconds < 0.1)
        return HealthPanel::tr("%1 ms").arg(number(qRound64(seconds * 1000)));
    if (seconds < 60)
        return HealthPanel::tr("%1 s").arg(QLocale().toString(seconds, 'f', 1));
    const int64_t s = qRound64(seconds);
    return HealthPanel::tr("%1 min %2 s").arg(number(s / 60)).arg(s % 60);
}

// A tab-separated field must not carry tabs or line breaks of its own.
QString tsvField(QString text)
{
    text.replace(u'\t', u' ');
    text.replace(u'\n', u' ');
    text.replace(u'\r', u' ');
    return text;
}

} // namespace

HealthPanel::HealthPanel(QWidget *parent)
    : QWidget(parent)
    , m_model(new HealthReportModel(this))
    , m_filter(new HealthFilterModel(this))
{
    m_filter->setSourceModel(m_model);
    // A check holds its thread for minutes: not one of the global pool's few.
    m_job.setThreadPool(BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-health"), 4));
    m_job.onProgress(
        [this](const Progress &progress) { updateProgress(progress.done, progress.total); });
    m_job.onFinished([this](const HealthReport &report) { endRun(report, {}); });
    m_job.onFailed([this](const Error &error) { endRun({}, error.message); });
    // Cancelled before the check began: an empty cancelled report, as the check would give.
    m_job.onCancelled([this] {
        HealthReport report;
        report.cancelled = true;
        endRun(report, {});
    });
    connect(m_model, &HealthReportModel::checkedChanged, this, &HealthPanel::updateState);
    buildUi();
    updateState();
}

HealthPanel::~HealthPanel() = default; // m_job drops a run going: it reports nothing

void HealthPanel::buildUi()
{
    setObjectName(QStringLiteral("healthPanel"));
    auto layout = new QVBoxLayout(this);
    layout->addLayout(buildHeader());
    layout->addLayout(buildSummaryRow());
    layout->addWidget(buildPages(), 1);
    createActions();
    layout->addLayout(buildActionBar());
    updateFilterCombo();
}

/// Start/cancel, then the dataset's size or the progress.
QLayout *HealthPanel::buildHeader()
{
    m_startButton = new QPushButton(this);
    m_startButton->setObjectName(QStringLiteral("checkHealthButton"));
    connect(m_startButton, &QPushButton::clicked, this, [this] {
        if (isRunning())
            cancel();
        else
            start();
    });

    m_datasetLabel = new QLabel(this);
    m_datasetLabel->setObjectName(QStringLiteral("healthDatasetLabel"));
    m_datasetLabel->setForegroundRole(QPalette::PlaceholderText);
    m_progressBar = new QProgressBar(this);
    m_progressBar->setObjectName(QStringLiteral("healthProgressBar"));
    m_progressBar->setTextVisible(true);
    m_progressBar->setAlignment(Qt::AlignCenter);
    m_statusStack = new QStackedWidget(this);
    m_statusStack->addWidget(m_datasetLabel);
    m_statusStack->addWidget(m_progressBar);
    m_statusStack->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);

    auto header = new QHBoxLayout;
    {
        // As wide as its widest text, so that the header does not jump when it changes.
        int width = 0;
        for (const QString &text :
             {tr("Check Health"), tr("Check Again"), tr("Cancel"), tr("Cancelling…")}) {
            m_startButton->setText(text);
            width = std::max(width, m_startButton->sizeHint().width());
        }
        m_startButton->setMinimumWidth(width);
    }
    header->addWidget(m_startButton);
    header->addWidget(m_statusStack, 1);

    return header;
}

/// The summary of the findings and the filter.
QLayout *HealthPanel::buildSummaryRow()
{
    m_summaryLabel = new QLabel(this);
    m_summaryLabel->setObjectName(QStringLiteral("healthSummaryLabel"));
    m_summaryLabel->setWordWrap(true);
    m_summaryLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_filterCombo = new QComboBox(this);
    m_filterCombo->setObjectName(QStringLiteral("healthFilterCombo"));
    m_filterCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_filterCombo->setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Fixed);
    m_filterLabel = new QLabel(tr("&Show:"), this);
    m_filterLabel->setBuddy(m_filterCombo);
    connect(m_filterCombo, &QComboBox::currentIndexChanged, this, &HealthPanel::applyFilter);

    auto summaryRow = new QHBoxLayout;
    summaryRow->addWidget(m_summaryLabel, 1);
    summaryRow->addWidget(m_filterLabel);
    summaryRow->addWidget(m_filterCombo);

    return summaryRow;
}

/// The pages: before the first run, the table, nothing found.
QWidget *HealthPanel::buildPages()
{
    m_emptyLabel = new QLabel(this);
    m_emptyLabel->setObjectName(QStringLiteral("healthEmptyLabel"));
    m_emptyLabel->setWordWrap(true);
    m_emptyLabel->setAlignment(Qt::AlignCenter);
    m_emptyLabel->setForegroundRole(QPalette::PlaceholderText);
    auto emptyPage = new QWidget(this);
    auto emptyLayout = new QVBoxLayout(emptyPage);
    emptyLayout->addStretch(1);
    emptyLayout->addLayout(centred(m_emptyLabel));
    emptyLayout->addStretch(2);

    m_pages = new QStackedWidget(this);
    m_pages->addWidget(emptyPage);
    m_pages->addWidget(buildTable());
    m_pages->addWidget(buildSuccessPage());
    return m_pages;
}

QWidget *HealthPanel::buildTable()
{
    m_view = new QTableView(this);
    m_view->setObjectName(QStringLiteral("healthTable"));
    m_view->setModel(m_filter);
    m_view->setItemDelegate(new ElidingDelegate(m_view));
    m_view->setSortingEnabled(true);
    m_view->sortByColumn(HealthReportModel::SeverityColumn, Qt::DescendingOrder);
    m_view->setAlternatingRowColors(true);
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_view->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_view->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_view->setTextElideMode(Qt::ElideMiddle);
    m_view->setWordWrap(false);
    m_view->setCornerButtonEnabled(false);
    m_view->setContextMenuPolicy(Qt::CustomContextMenu);
    m_view->verticalHeader()->hide();
    m_view->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    QHeaderView *columns = m_view->horizontalHeader();
    columns->setStretchLastSection(true);
    columns->setHighlightSections(false);
    columns->setDefaultAlignment(Qt::AlignLeft | Qt::AlignVCenter);
    {
        // Sized from the longest texts instead of ResizeToContents, which reads every row.
        const QFontMetrics fm = fontMetrics();
        const int pad = fm.averageCharWidth() * 3;
        const int checkAndIcon = 22 + 22;
        m_view->setColumnWidth(HealthReportModel::SeverityColumn,
                               checkAndIcon + fm.horizontalAdvance(tr("Warning")) + pad);
        m_view->setColumnWidth(HealthReportModel::ProblemColumn,
                               fm.horizontalAdvance(tr("Wrong extension")) + pad);
        m_view->setColumnWidth(HealthReportModel::SplitColumn,
                               fm.horizontalAdvance(QStringLiteral("validation")) + pad);
        m_view->setColumnWidth(HealthReportModel::FileColumn, fm.averageCharWidth() * 36);
    }
    connect(m_view, &QTableView::doubleClicked, this, &HealthPanel::activateRow);
    connect(m_view, &QTableView::customContextMenuRequested, this, &HealthPanel::showContextMenu);

    // Under the table: the current duplicate's two files side by side.
    m_pairView = new DuplicatePairView(this);
    m_pairView->hide();
    connect(m_view->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex &current) { showPairOf(current); });
    auto splitter = new QSplitter(Qt::Vertical, this);
    splitter->setChildrenCollapsible(false);
    splitter->addWidget(m_view);
    splitter->addWidget(m_pairView);
    splitter->setStretchFactor(0, 3);
    splitter->setStretchFactor(1, 2);
    return splitter;
}

void HealthPanel::showPairOf(const QModelIndex &proxyIndex)
{
    const QModelIndex source = m_filter->mapToSource(proxyIndex);
    const HealthFinding *finding = source.isValid() ? &m_model->finding(source.row()) : nullptr;
    if (!finding || finding->duplicateOf.isEmpty()
        || (finding->kind != Kind::Duplicate && finding->kind != Kind::NearDuplicate)) {
        m_pairView->clear();
        m_pairView->hide();
        return;
    }
    const QString name = finding->split.isEmpty() ? finding->relativePath
                                                  : finding->split + u'/' + finding->relativePath;
    // Names are "split/relative" under the root, or relative to it without splits.
    const QString other = QDir(m_root).filePath(finding->duplicateOf);
    m_pairView->showPair(finding->absolutePath, name, other,
                         HealthReportModel::detailsText(*finding));
    m_pairView->show();
}

QWidget *HealthPanel::buildSuccessPage()
{
    m_successIcon = new QLabel(this);
    m_successIcon->setPixmap(paintSuccessPixmap(48, devicePixelRatioF()));
    m_successLabel = new QLabel(this);
    m_successLabel->setObjectName(QStringLiteral("healthSuccessLabel"));
    m_successLabel->setWordWrap(true);
    m_successLabel->setAlignment(Qt::AlignCenter);
    {
        QFont font = m_successLabel->font();
        font.setPointSizeF(font.pointSizeF() * 1.2);
        m_successLabel->setFont(font);
    }
    auto successPage = new QWidget(this);
    auto successLayout = new QVBoxLayout(successPage);
    successLayout->addStretch(1);
    successLayout->addWidget(m_successIcon, 0, Qt::AlignHCenter);
    successLayout->addSpacing(8);
    successLayout->addLayout(centred(m_successLabel));
    successLayout->addStretch(2);

    return successPage;
}

void HealthPanel::setOptions(const HealthOptions &options)
{
    m_options = options;
    const QSignalBlocker blocker(m_nearDuplicatesAction);
    m_nearDuplicatesAction->setChecked(options.findNearDuplicates);
}

void HealthPanel::createActions()
{
    // Actions.
    m_checkErrorsAction = new QAction(tr("Check Errors Only"), this);
    m_checkErrorsAction->setObjectName(QStringLiteral("checkErrorsAction"));
    m_checkErrorsAction->setToolTip(
        tr("Tick every file that torchvision would fail on, and untick the rest"));
    connect(m_checkErrorsAction, &QAction::triggered, this, [this] { checkErrorsOnly(); });

    m_quarantineAction = new QAction(QIcon::fromTheme(QStringLiteral("folder-move")),
                                     tr("Move Checked to Quarantine…"), this);
    m_quarantineAction->setObjectName(QStringLiteral("quarantineAction"));
    connect(m_quarantineAction, &QAction::triggered, this, [this] { quarantineChecked(true); });

    m_undoAction
        = new QAction(QIcon::fromTheme(QStringLiteral("edit-undo")), tr("Undo Quarantine"), this);
    m_undoAction->setObjectName(QStringLiteral("undoQuarantineAction"));
    connect(m_undoAction, &QAction::triggered, this, [this] { undoLastQuarantine(true); });

    m_copyAction
        = new QAction(QIcon::fromTheme(QStringLiteral("edit-copy")), tr("Copy Report"), this);
    m_copyAction->setObjectName(QStringLiteral("copyReportAction"));
    m_copyAction->setToolTip(tr("Copy the rows shown as tab-separated text"));
    connect(m_copyAction, &QAction::triggered, this, &HealthPanel::copyReport);

    m_exportAction = new QAction(QIcon::fromTheme(QStringLiteral("document-save-as")),
                                 tr("Export Report…"), this);
    m_exportAction->setObjectName(QStringLiteral("exportReportAction"));
    m_exportAction->setToolTip(tr("Save the whole report as JSON"));
    connect(m_exportAction, &QAction::triggered, this, &HealthPanel::exportReportInteractively);

    m_nearDuplicatesAction = new QAction(tr("Near-Duplicates"), this);
    m_nearDuplicatesAction->setObjectName(QStringLiteral("nearDuplicatesAction"));
    m_nearDuplicatesAction->setCheckable(true);
    m_nearDuplicatesAction->setToolTip(
        tr("The next check also finds resized, re-encoded or cropped copies by their perceptual "
           "hash; a copy in another split is an error (leakage)"));
    connect(m_nearDuplicatesAction, &QAction::toggled, this,
            [this](bool on) { m_options.findNearDuplicates = on; });
}

QLayout *HealthPanel::buildActionBar()
{
    // Framed buttons rather than a QToolBar: without an icon theme, flat tool buttons read as
    // plain text.
    auto actions = new QHBoxLayout;
    auto addButton = [this, actions](QAction *action) {
        auto button = new QToolButton(this);
        button->setDefaultAction(action);
        button->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
        button->setObjectName(action->objectName() + u"Button");
        actions->addWidget(button);
    };
    addButton(m_checkErrorsAction);
    addButton(m_quarantineAction);
    addButton(m_undoAction);
    addButton(m_nearDuplicatesAction);
    actions->addStretch(1);
    addButton(m_copyAction);
    addButton(m_exportAction);

    return actions;
}

void HealthPanel::setDataset(const QString &datasetRoot, QList<QPair<QString, IndexPtr>> splits)
{
    const QString root = datasetRoot.isEmpty()
        ? QString()
        : QDir::cleanPath(QFileInfo(datasetRoot).absoluteFilePath());
    m_splits = std::move(splits);
    m_splits.removeIf([](const QPair<QString, IndexPtr> &split) { return !split.second; });
    if (root != m_root) {
        m_root = root;
        if (isRunning())
            cancel(); // its report is for the old dataset: endRun() drops it
        m_model->clear();
        m_batches.clear();
        m_hasReport = false;
        m_lastError.clear();
        m_statusStack->setCurrentWidget(m_datasetLabel);
    }
    bool named = false;
    for (const auto &split : m_splits)
        named |= !split.first.isEmpty();
    m_view->setColumnHidden(HealthReportModel::SplitColumn, !named);
    updateFilterCombo();
    updateSummary();
    updateState();
}

QString HealthPanel::quarantineFolder() const
{
    if (!m_quarantineFolder.isEmpty())
        return m_quarantineFolder;
    return m_root.isEmpty() ? QString() : defaultQuarantineFolder(m_root);
}

int64_t HealthPanel::sampleTotal() const
{
    int64_t total = 0;
    for (const auto &split : m_splits)
        total += split.second->sampleCount();
    return total;
}

void HealthPanel::start()
{
    if (isRunning())
        return;
    if (m_root.isEmpty() || m_splits.isEmpty()) {
        Q_EMIT statusMessage(tr("Open a dataset to check its health."));
        return;
    }

    QList<HealthTarget> targets;
    QList<IndexPtr> indexes; // keeps the targets' raw index pointers valid for the run
    for (const auto &split : m_splits) {
        indexes.append(split.second);
        targets.append(HealthTarget{split.first, split.second.get()});
    }
    m_runRoot = m_root;
    m_runTotal = sampleTotal();
    m_runDone = 0;
    m_runClock.start();
    m_lastDone = -1;
    const CheckFunction check = m_check ? m_check : CheckFunction(checkHealth);
    m_job.start([targets, indexes, options = m_options,
                 check](JobContext<Progress> &context) -> Result<HealthReport> {
        // The exception boundary of the run, with the panel's own words.
        try {
            auto progress = [&context](int64_t done, int64_t total) {
                // Called from several worker threads: keep the highest count seen.
                context.updateProgress([done, total](Progress &p) {
                    p.done = std::max<qint64>(p.done, done);
                    p.total = total;
                });
            };
            return check(targets, options, progress, context.cancelFlag());
        } catch (const std::exception &e) {
            return Error{tr("The health check stopped: %1").arg(QString::fromLocal8Bit(e.what()))};
        } catch (...) {
            return Error{tr("The health check stopped on an unknown error.")};
        }
    });

    m_statusStack->setCurrentWidget(m_progressBar);
    m_progressBar->setRange(0, 0);
    m_progressBar->setValue(0);
    updateProgress(0, m_runTotal);
    updateState();
    Q_EMIT statusMessage(tr("Checking %1 images…").arg(number(m_runTotal)));
    Q_EMIT runningChanged(true);
}

void HealthPanel::cancel()
{
    if (!isRunning() || m_job.isCancelRequested())
        return;
    m_job.requestCancel();
    updateState();
    Q_EMIT statusMessage(tr("Cancelling the health check…"));
}

void HealthPanel::endRun(const HealthReport &report, const QString &error)
{
    const bool stale = m_runRoot != m_root; // the dataset changed meanwhile
    // A cancel that came after the last file leaves a complete report: that run finished.
    const bool wasCancelled = report.cancelled;
    const qint64 done = qMax<qint64>(report.filesChecked, m_runDone);

    m_lastError = error;
    if (!error.isEmpty()) {
        m_model->clear();
        m_hasReport = false;
        m_statusStack->setCurrentWidget(m_datasetLabel);
    } else if (stale) {
        m_statusStack->setCurrentWidget(m_datasetLabel);
    } else {
        m_model->setReport(report);
        m_hasReport = true;
        const double seconds = report.seconds > 0 ? report.seconds : m_runClock.elapsed() / 1000.0;
        const qint64 total = qMax<qint64>(m_runTotal, done);
        m_progressBar->setRange(0, int(qMin<qint64>(total, INT_MAX)));
        m_progressBar->setValue(int(qMin<qint64>(done, INT_MAX)));
        const QString rate
            = seconds > 0 ? tr(" · %1 img/s").arg(number(qRound64(done / seconds))) : QString();
        if (wasCancelled) {
            m_progressBar->setFormat(
                tr("Cancelled at %1 / %2 images").arg(number(done), number(total)));
        } else {
            m_progressBar->setFormat(
                tr("Checked %1 images in %2").arg(number(done), duration(seconds)) % rate);
        }
    }
    updateFilterCombo();
    updateSummary();
    updateState();

    Q_EMIT runningChanged(false);
    if (!error.isEmpty()) {
        Q_EMIT statusMessage(error);
        Q_EMIT failed(error);
    } else if (wasCancelled || stale) {
        Q_EMIT statusMessage(tr("Health check cancelled after %1 images.").arg(number(done)));
        Q_EMIT cancelled();
    } else {
        const int errors = report.errorCount();
        const int warnings = report.warningCount();
        Q_EMIT statusMessage(tr("Health check done: %1 errors, %2 warnings in %3 images.")
                                 .arg(number(errors), number(warnings), number(done)));
        Q_EMIT finished(errors, warnings);
    }
}

void HealthPanel::updateProgress(qint64 done, qint64 total)
{
    m_runDone = done;
    if (total > 0)
        m_runTotal = total;
    if (done == m_lastDone)
        return;
    m_lastDone = done;
    if (total > 0) {
        // QProgressBar counts in int: scale down the (theoretical) datasets beyond that.
        const qint64 scale = total / INT_MAX + 1;
        m_progressBar->setRange(0, int(total / scale));
        m_progressBar->setValue(int(qMin(done, total) / scale));
    }
    QString text = tr("%1 / %2 images").arg(number(done), number(total));
    const double seconds = m_runClock.elapsed() / 1000.0;
    if (seconds >= 0.5 && done > 0)
        text += tr(" · %1 img/s").arg(number(qRound64(done / seconds)));
    // QProgressBar::setFormat() treats % as a placeholder.
    text.replace(u'%', QStringLiteral("%%"));
    m_progressBar->setFormat(text);
    Q_EMIT progressChanged(done, total);
}

void HealthPanel::updateState()
{
    const bool running = isRunning();
    const bool haveDataset = !m_root.isEmpty() && !m_splits.isEmpty();
    const bool cancelling = running && m_job.isCancelRequested();

    m_startButton->setText(running ? (cancelling ? tr("Cancelling…") : tr("Cancel"))
                                   : (m_hasReport ? tr("Check Again") : tr("Check Health")));
    m_startButton->setEnabled(running ? !cancelling : haveDataset);
    m_startButton->setToolTip(running ? tr("Stop the health check")
                                      : tr("Decode every image as torchvision would"));

    const int64_t total = sampleTotal();
    if (m_root.isEmpty()) {
        m_datasetLabel->setText(tr("No dataset open"));
    } else {
        const int named = int(std::count_if(m_splits.cbegin(), m_splits.cend(),
                                            [](const auto &s) { return !s.first.isEmpty(); }));
        QString text = total == 1 ? tr("1 image") : tr("%1 images").arg(number(total));
        if (named > 1)
            text = tr("%1 in %2 splits").arg(text, number(named));
        m_datasetLabel->setText(text);
    }

    const HealthReport &report = m_model->report();
    const bool idleWithReport = !running && m_hasReport;
    const int checked = int(m_model->checkedPaths().size());
    m_checkErrorsAction->setEnabled(idleWithReport && report.errorCount() > 0);
    m_quarantineAction->setEnabled(idleWithReport && checked > 0);
    m_quarantineAction->setText(checked > 0 ? tr("Move %1 to Quarantine…").arg(filesPhrase(checked))
                                            : tr("Move Checked to Quarantine…"));
    m_undoAction->setEnabled(!running && !m_batches.isEmpty());
    m_undoAction->setText(
        m_batches.isEmpty()
            ? tr("Undo Quarantine")
            : tr("Undo Quarantine (%1)").arg(filesPhrase(int(m_batches.last().entries.size()))));
    m_copyAction->setEnabled(m_hasReport && m_model->rowCount() > 0);
    m_exportAction->setEnabled(m_hasReport);
    // The filter only means something next to a table.
    const bool showFilter = m_hasReport && m_model->rowCount() > 0;
    m_filterCombo->setVisible(showFilter);
    m_filterLabel->setVisible(showFilter);

    // Pages: empty state until a report exists, then the table or the success state.
    if (!m_hasReport && running) {
        m_emptyLabel->setText(tr("Decoding every image the way torchvision's loader would… "
                                 "What would break training is listed here when the check is "
                                 "done."));
        m_pages->setCurrentIndex(0);
    } else if (!m_hasReport && !m_lastError.isEmpty()) {
        m_emptyLabel->setText(m_lastError);
        m_pages->setCurrentIndex(0);
    } else if (!m_hasReport) {
        m_emptyLabel->setText(
            tr("Check decodes every image the way torchvision's loader would and lists what "
               "would break training: unreadable, truncated and empty files, odd modes, huge "
               "images and duplicates."));
        m_pages->setCurrentIndex(0);
    } else if (m_model->rowCount() == 0 && report.cancelled) {
        m_emptyLabel->setText(tr("The check was cancelled after %1 of %2 images and found "
                                 "nothing so far. Check again to check every image.")
                                  .arg(number(report.filesChecked), number(total)));
        m_pages->setCurrentIndex(0);
    } else if (m_model->rowCount() == 0) {
        const int64_t n = report.filesChecked;
        QString text = n == 1 ? tr("The image is readable.")
                              : tr("All %1 images are readable.").arg(number(n));
        if (m_options.findDuplicates && n > 1)
            text += u' ' + tr("No duplicates.");
        if (n == 0)
            text = tr("The dataset has no images to check.");
        m_successLabel->setText(text);
        m_successIcon->setVisible(n > 0);
        m_pages->setCurrentIndex(2);
    } else {
        m_pages->setCurrentIndex(1);
    }
}

QString HealthPanel::summaryText() const
{
    if (!m_hasReport)
        return {};
    const HealthReport &report = m_model->report();
    std::map<Kind, int> counts;
    for (const HealthFinding &finding : report.findings)
        ++counts[finding.kind];

    QStringList parts;
    for (Kind kind : kKindOrder) {
        if (const auto it = counts.find(kind); it != counts.end())
            parts.append(kindPhrase(kind, it->second));
    }
    QString text;
    if (report.cancelled)
        text = tr("Cancelled after %1 images.").arg(number(report.filesChecked)) % u' ';
    if (parts.isEmpty())
        return {}; // the page in place of the table says it

    text += parts.join(QStringLiteral(", "));
    const int failing = m_model->failingFileCount();
    text += failing > 0 ? tr(" — torchvision would fail on %1").arg(filesPhrase(failing))
                        : tr(" — torchvision would load every file");
    const auto leaks = std::count_if(
        report.findings.cbegin(), report.findings.cend(), [](const HealthFinding &f) {
            return f.kind == Kind::NearDuplicate && f.severity == Severity::Error;
        });
    if (leaks > 0)
        text += tr(", but %1 leaked into another split").arg(filesPhrase(int(leaks)));
    if (const int moved = m_model->quarantinedCount(); moved > 0)
        text += tr(" (%1 moved to quarantine)").arg(filesPhrase(moved));
    return text;
}

void HealthPanel::updateSummary()
{
    const QString text = summaryText();
    m_summaryLabel->setText(text);
    m_summaryLabel->setVisible(!text.isEmpty());
}

void HealthPanel::updateFilterCombo()
{
    const QVariant previous = m_filterCombo->currentData();
    const QSignalBlocker blocker(m_filterCombo);
    m_filterCombo->clear();

    const HealthReport &report = m_model->report();
    std::map<Kind, int> kinds;
    int errors = 0;
    int warnings = 0;
    for (const HealthFinding &finding : report.findings) {
        ++kinds[finding.kind];
        errors += finding.severity == Severity::Error;
        warnings += finding.severity == Severity::Warning;
    }
    auto withCount = [](const QString &name, int n) {
        return tr("%1 (%2)").arg(name, number(n));
    };
    m_filterCombo->addItem(withCount(tr("All problems"), int(report.findings.size())), kFilterAll);
    m_filterCombo->addItem(m_model->severityIcon(Severity::Error), withCount(tr("Errors"), errors),
                           kFilterSeverityBase + int(Severity::Error));
    m_filterCombo->addItem(m_model->severityIcon(Severity::Warning),
                           withCount(tr("Warnings"), warnings),
                           kFilterSeverityBase + int(Severity::Warning));
    if (!kinds.empty())
        m_filterCombo->insertSeparator(m_filterCombo->count());
    for (Kind kind : kKindOrder) {
        if (const auto it = kinds.find(kind); it != kinds.end()) {
            m_filterCombo->addItem(withCount(HealthReportModel::kindName(kind), it->second),
                                   kFilterKindBase + int(kind));
        }
    }
    const int index = m_filterCombo->findData(previous);
    m_filterCombo->setCurrentIndex(index >= 0 ? index : 0);
    applyFilter();
}

void HealthPanel::applyFilter()
{
    const int filter = m_filterCombo->currentData().isValid() ? m_filterCombo->currentData().toInt()
                                                              : kFilterAll;
    std::optional<Severity> severity;
    std::optional<Kind> kind;
    if (filter >= kFilterKindBase)
        kind = Kind(filter - kFilterKindBase);
    else if (filter >= kFilterSeverityBase)
        severity = Severity(filter - kFilterSeverityBase);
    m_filter->setSeverityFilter(severity);
    m_filter->setKindFilter(kind);
}

int HealthPanel::checkErrorsOnly()
{
    const int n = m_model->checkAllErrors();
    Q_EMIT statusMessage(n > 0 ? tr("Ticked %1 that torchvision would fail on.").arg(filesPhrase(n))
                               : tr("No file has an error."));
    return n;
}

bool HealthPanel::quarantineChecked(bool confirm)
{
    if (isRunning())
        return false;
    const QStringList paths = m_model->checkedPaths();
    if (paths.isEmpty()) {
        Q_EMIT statusMessage(tr("Tick the files to move to quarantine first."));
        return false;
    }
    const QString folder = quarantineFolder();

    if (confirm) {
        QMessageBox box(QMessageBox::Question, tr("Move to Quarantine"),
                        tr("Move %1 out of the dataset?").arg(filesPhrase(int(paths.size()))),
                        QMessageBox::Cancel, this);
        box.setTextFormat(Qt::PlainText);
        box.setInformativeText(
            tr("<p>They are moved, keeping their folder layout, into a new folder under</p>"
               "<p style=\"white-space:pre\"><b>%1</b></p>"
               "<p>with a manifest, so that Undo Quarantine can bring them back. "
               "Nothing is deleted.</p>")
                .arg(QDir::toNativeSeparators(folder).toHtmlEscaped()));
        QPushButton *move = box.addButton(tr("Move to Quarantine"), QMessageBox::AcceptRole);
        box.setDefaultButton(move);
        box.exec();
        if (box.clickedButton() != move)
            return false;
    }

    Result<QuarantineBatch> batch = quarantineFiles(m_root, paths, folder);
    if (!batch) {
        Q_EMIT statusMessage(batch.errorMessage());
        if (confirm)
            QMessageBox::warning(this, tr("Cannot Move to Quarantine"), batch.errorMessage());
        return false;
    }
    QStringList moved;
    for (const QuarantineEntry &entry : batch->entries)
        moved.append(entry.originalPath);
    m_batches.append(std::move(batch).value());
    m_model->markQuarantined(moved);
    updateSummary();
    updateState();
    Q_EMIT statusMessage(tr("Moved %1 to %2. Nothing was deleted; Undo Quarantine brings them "
                            "back.")
                             .arg(filesPhrase(int(moved.size())),
                                  QDir::toNativeSeparators(m_batches.last().batchFolder)));
    Q_EMIT filesQuarantined(moved);
    return true;
}

bool HealthPanel::undoLastQuarantine(bool confirm)
{
    if (isRunning() || m_batches.isEmpty())
        return false;
    const Status status = undoQuarantine(m_batches.last());
    if (!status) {
        Q_EMIT statusMessage(status.errorMessage());
        if (confirm)
            QMessageBox::warning(this, tr("Cannot Undo Quarantine"), status.errorMessage());
        return false;
    }
    const QuarantineBatch batch = m_batches.takeLast();
    QStringList restored;
    for (const QuarantineEntry &entry : batch.entries)
        restored.append(entry.originalPath);
    m_model->markRestored(restored);
    updateSummary();
    updateState();
    Q_EMIT statusMessage(
        tr("Moved %1 back into the dataset.").arg(filesPhrase(int(restored.size()))));
    Q_EMIT quarantineUndone(restored);
    return true;
}

QString HealthPanel::reportText() const
{
    auto line = [](QStringList fields) -> QString {
        for (QString &field : fields)
            field = tsvField(std::move(field));
        return fields.join(u'\t') % u'\n';
    };
    QString text
        = line({tr("Severity"), tr("Problem"), tr("Split"), tr("File"), tr("Details"), tr("Path")});
    for (int row = 0; row < m_filter->rowCount(); ++row) {
        const int source = m_filter->mapToSource(m_filter->index(row, 0)).row();
        const HealthFinding &finding = m_model->finding(source);
        QString details = HealthReportModel::detailsText(finding);
        if (m_model->isQuarantined(finding.absolutePath))
            details = tr("Moved to quarantine. %1").arg(details);
        text += line({HealthReportModel::severityName(finding.severity),
                      HealthReportModel::kindName(finding.kind), finding.split,
                      finding.relativePath, details, finding.absolutePath});
    }
    return text;
}

void HealthPanel::copyReport()
{
    if (!m_hasReport)
        return;
    QApplication::clipboard()->setText(reportText());
    Q_EMIT statusMessage(
        tr("Copied %1 rows of the health report.").arg(number(m_filter->rowCount())));
}

Status HealthPanel::exportReport(const QString &fileName) const
{
    const HealthReport &report = m_model->report();
    QJsonArray findings;
    for (const HealthFinding &finding : report.findings) {
        QJsonObject object{
            {QStringLiteral("kind"), HealthReportModel::kindKey(finding.kind)},
            {QStringLiteral("severity"), HealthReportModel::severityKey(finding.severity)},
            {QStringLiteral("split"), finding.split},
            {QStringLiteral("relativePath"), finding.relativePath},
            {QStringLiteral("absolutePath"), finding.absolutePath},
            {QStringLiteral("message"), finding.message},
            {QStringLiteral("quarantined"), m_model->isQuarantined(finding.absolutePath)},
        };
        if (!finding.duplicateOf.isEmpty())
            object.insert(QStringLiteral("duplicateOf"), finding.duplicateOf);
        if (finding.hashDistance >= 0)
            object.insert(QStringLiteral("hashDistance"), finding.hashDistance);
        findings.append(object);
    }
    const QJsonObject root{
        {QStringLiteral("dataset"), m_root},
        {QStringLiteral("filesChecked"), qint64(report.filesChecked)},
        {QStringLiteral("bytesRead"), qint64(report.bytesRead)},
        {QStringLiteral("seconds"), report.seconds},
        {QStringLiteral("cancelled"), report.cancelled},
        {QStringLiteral("errors"), report.errorCount()},
        {QStringLiteral("warnings"), report.warningCount()},
        {QStringLiteral("findings"), findings},
    };

    QSaveFile file(fileName);
    if (!file.open(QIODevice::WriteOnly)) {
        return Error{tr("Cannot write the health report “%1”: %2")
                         .arg(QDir::toNativeSeparators(fileName), file.errorString())};
    }
    file.write(QJsonDocument(root).toJson(QJsonDocument::Indented));
    if (!file.commit()) {
        return Error{tr("Cannot write the health report “%1”: %2")
                         .arg(QDir::toNativeSeparators(fileName), file.errorString())};
    }
    return success();
}

void HealthPanel::exportReportInteractively()
{
    if (!m_hasReport)
        return;
    const QFileInfo rootInfo(m_root);
    const QString suggested
        = rootInfo.dir().filePath(rootInfo.fileName() + QStringLiteral("-health.json"));
    const QString fileName = QFileDialog::getSaveFileName(this, tr("Export Health Report"),
                                                          suggested, tr("JSON (*.json)"));
    if (fileName.isEmpty())
        return;
    const Status status = exportReport(fileName);
    if (!status) {
        QMessageBox::warning(this, tr("Cannot Export Report"), status.errorMessage());
        return;
    }
    Q_EMIT statusMessage(
        tr("Exported the health report to %1.").arg(QDir::toNativeSeparators(fileName)));
}

void HealthPanel::activateRow(const QModelIndex &proxyIndex)
{
    if (!proxyIndex.isValid())
        return;
    const QString path = proxyIndex.data(HealthReportModel::AbsolutePathRole).toString();
    if (proxyIndex.data(HealthReportModel::QuarantinedRole).toBool()) {
        Q_EMIT statusMessage(
            tr("“%1” was moved to quarantine.")
                .arg(proxyIndex.data(HealthReportModel::RelativePathRole).toString()));
        return;
    }
    Q_EMIT fileActivated(path);
}

void HealthPanel::showContextMenu(const QPoint &pos)
{
    const QModelIndex index = m_view->indexAt(pos);
    if (!index.isValid())
        return;
    QList<int> rows; // source rows of the selection
    for (const QModelIndex &selected : m_view->selectionModel()->selectedRows())
        rows.append(m_filter->mapToSource(selected).row());
    if (rows.isEmpty())
        rows.append(m_filter->mapToSource(index).row());

    QMenu menu(this);
    QAction *open = menu.addAction(tr("Open Image"));
    open->setEnabled(!index.data(HealthReportModel::QuarantinedRole).toBool());
    QAction *copyPath
        = menu.addAction(QIcon::fromTheme(QStringLiteral("edit-copy")), tr("Copy Path"));
    menu.addSeparator();
    QAction *check = menu.addAction(tr("Check Selected"));
    QAction *uncheck = menu.addAction(tr("Uncheck Selected"));
    QAction *uncheckAll = menu.addAction(tr("Uncheck All"));
    check->setEnabled(!isRunning());
    uncheckAll->setEnabled(m_model->checkedCount() > 0);

    QAction *chosen = menu.exec(m_view->viewport()->mapToGlobal(pos));
    if (chosen == open) {
        activateRow(index);
    } else if (chosen == copyPath) {
        QStringList paths;
        for (int row : rows)
            paths.append(m_model->finding(row).absolutePath);
        paths.removeDuplicates();
        QApplication::clipboard()->setText(paths.join(u'\n'));
    } else if (chosen == check || chosen == uncheck) {
        for (int row : rows)
            m_model->setChecked(row, chosen == check);
    } else if (chosen == uncheckAll) {
        m_model->uncheckAll();
    }
}

} // namespace ifs
