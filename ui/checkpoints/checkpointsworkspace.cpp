#include "checkpoints/checkpointsworkspace.h"

#include "base/settings.h"
#include "checkpoint/checkpointfiles.h"
#include "checkpoints/checkpointtreemodel.h"
#include "checkpoints/keyfilterproxy.h"
#include "checkpoints/loadintomodeldialog.h"
#include "checkpoints/savecheckpointdialog.h"
#include "checkpoints/tensorstatsview.h"
#include "common/elidedlabel.h"
#include "common/emptystatepage.h"
#include "common/icons.h"
#include "common/warningbanner.h"
#include "torch/runtime.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMenu>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QTabWidget>
#include <QTreeView>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace ifs {

using namespace ckpt;

namespace {

const QString kFileFilter = checkpointNameFilter();

QString tallyText(const QMap<QString, TensorTally> &tallies)
{
    const QLocale locale;
    QStringList rows;
    for (auto it = tallies.cbegin(); it != tallies.cend(); ++it) {
        rows.append(QStringLiteral("<tr><td>%1&nbsp;&nbsp;</td><td align=right>%2</td>"
                                   "<td align=right>&nbsp;&nbsp;%3</td>"
                                   "<td align=right>&nbsp;&nbsp;%4</td></tr>")
                        .arg(it.key().toHtmlEscaped(),
                             QObject::tr("%n tensor(s)", nullptr, int(it->tensors)),
                             locale.toString(it->elements),
                             CheckpointTreeModel::bytesText(it->bytes)));
    }
    return QStringLiteral("<table cellspacing=1>") + rows.join(QString())
        + QStringLiteral("</table>");
}

} // namespace

CheckpointsWorkspace::CheckpointsWorkspace(Settings *settings, QWidget *parent)
    : QWidget(parent)
    , m_settings(settings)
    , m_openJob(new CheckpointOpenJob(this))
    , m_statsJob(new TensorStatsJob(this))
{
    QHBoxLayout *bar = buildTopBar();
    m_banner = new WarningBanner(this);

    buildEmptyState();
    buildStructurePane();
    QWidget *compare = buildComparePane();

    m_tabs = new QTabWidget(this);
    m_tabs->setDocumentMode(true);
    m_tabs->addTab(m_mainSplitter, tr("Structure"));
    m_tabs->addTab(compare, tr("Compare"));

    m_content = new QWidget(this);
    auto *contentLayout = new QVBoxLayout(m_content);
    contentLayout->setContentsMargins(0, 0, 0, 0);
    contentLayout->addWidget(m_tabs);

    m_stack = new QStackedWidget(this);
    m_stack->addWidget(m_empty);
    m_stack->addWidget(m_content);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addLayout(bar);
    layout->addWidget(m_banner);
    layout->addWidget(m_stack, 1);

    if (m_settings) {
        m_mainSplitter->restoreState(m_settings->splitterState(QStringLiteral("checkpoints")));
        m_sideSplitter->restoreState(m_settings->splitterState(QStringLiteral("checkpointsSide")));
        setRecentCheckpoints(m_settings->recentCheckpoints());
    }
    if (m_mainSplitter->sizes().value(0) == 0 || !m_settings
        || m_settings->splitterState(QStringLiteral("checkpoints")).isEmpty())
        m_mainSplitter->setSizes({900, 380});

    connectSignals();
    showCheckpoint();
}

QHBoxLayout *CheckpointsWorkspace::buildTopBar()
{
    m_open = new QPushButton(themedIcon(QStringLiteral("document-open")), tr("Open…"), this);
    m_open->setToolTip(tr("Open one checkpoint, or several to compare them"));
    // A push button with a menu reserves room for its arrow; a tool button in instant-popup
    // mode draws the arrow over its own edge, next to the file name.
    m_recentButton = new QPushButton(tr("Recent"), this);
    m_recentButton->setObjectName(QStringLiteral("recentButton"));
    m_recentMenu = new QMenu(m_recentButton);
    m_recentButton->setMenu(m_recentMenu);
    m_fileCombo = new QComboBox(this);
    m_fileCombo->setObjectName(QStringLiteral("fileCombo"));
    m_fileCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    // The name shortens (the tooltip has the path) rather than pushing the filter and the
    // buttons off a narrow window.
    m_fileLabel = new ElidedLabel(this);
    m_fileLabel->setObjectName(QStringLiteral("fileLabel"));
    QFont bold = m_fileLabel->font();
    bold.setBold(true);
    m_fileLabel->setFont(bold);
    m_filter = new QLineEdit(this);
    m_filter->setObjectName(QStringLiteral("filterEdit"));
    m_filter->setPlaceholderText(tr("Filter keys (Ctrl+F)"));
    m_filter->setClearButtonEnabled(true);
    m_filter->setMinimumWidth(220);
    m_loadButton = new QPushButton(tr("Load into Model…"), this);
    m_loadButton->setObjectName(QStringLiteral("loadIntoModelButton"));
    m_exportButton = new QPushButton(tr("Export…"), this);
    m_exportButton->setObjectName(QStringLiteral("exportButton"));
    m_exportButton->setToolTip(tr("Export the model as TorchScript or ONNX"));
    m_saveButton = new QPushButton(tr("Save As…"), this);
    m_saveButton->setObjectName(QStringLiteral("saveAsButton"));
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 0);
    m_progress->setMaximumWidth(160);
    m_progress->setTextVisible(false);
    m_progress->hide();
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->hide();
    auto *bar = new QHBoxLayout;
    bar->setContentsMargins(8, 6, 8, 6);
    bar->addWidget(m_open);
    bar->addWidget(m_recentButton);
    bar->addWidget(m_fileCombo);
    bar->addWidget(m_fileLabel, 1);
    bar->addWidget(m_progress);
    bar->addWidget(m_cancel);
    bar->addWidget(m_filter);
    bar->addWidget(m_loadButton);
    bar->addWidget(m_exportButton);
    bar->addWidget(m_saveButton);
    return bar;
}

void CheckpointsWorkspace::buildEmptyState()
{
    m_empty = new EmptyStatePage(
        QStringLiteral("document-open"), tr("No checkpoint open"),
        tr("Open a PyTorch checkpoint (%1) or a .safetensors file to see what it holds, fit it to "
           "a model and save it in another form. Open two to compare them. You can also drop "
           "files on the window.")
            .arg(checkpointSuffixText(CheckpointFiles::TorchSave)),
        this);
    m_empty->openButton()->setText(tr("Open Checkpoint…"));
    m_empty->sampleButton()->setText(tr("Compare Two…"));
    connect(m_empty->openButton(), &QPushButton::clicked, this,
            &CheckpointsWorkspace::showOpenDialog);
    connect(m_empty->sampleButton(), &QPushButton::clicked, this,
            &CheckpointsWorkspace::showCompareDialog);
    m_recentList = new QWidget(m_empty);
    new QVBoxLayout(m_recentList);
    m_empty->addBelow(m_recentList);
}

void CheckpointsWorkspace::buildStructurePane()
{
    m_model = new CheckpointTreeModel(this);
    m_proxy = new KeyFilterProxy(this);
    m_proxy->setRecursiveFilteringEnabled(true);
    m_proxy->setSourceModel(m_model);
    m_tree = new QTreeView(this);
    m_tree->setObjectName(QStringLiteral("checkpointTree"));
    m_tree->setModel(m_proxy);
    m_tree->setUniformRowHeights(true);
    m_tree->setAlternatingRowColors(true);
    m_tree->header()->setStretchLastSection(false);
    m_tree->header()->setSectionResizeMode(CheckpointTreeModel::KeyColumn, QHeaderView::Stretch);
    m_tree->setColumnWidth(CheckpointTreeModel::TypeColumn, 140);
    m_tree->setColumnWidth(CheckpointTreeModel::ShapeColumn, 130);
    m_tree->setColumnWidth(CheckpointTreeModel::DTypeColumn, 80);
    m_tree->setColumnWidth(CheckpointTreeModel::DeviceColumn, 95);
    m_tree->setColumnWidth(CheckpointTreeModel::SizeColumn, 80);

    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("summaryLabel"));
    m_summary->setTextFormat(Qt::RichText);
    m_summary->setWordWrap(true);
    m_summary->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_summary->setMargin(8);
    auto *summaryScroll = new QScrollArea(this);
    summaryScroll->setWidget(m_summary);
    summaryScroll->setWidgetResizable(true);
    summaryScroll->setFrameShape(QFrame::NoFrame);
    m_stats = new TensorStatsView(this);

    m_sideSplitter = new QSplitter(Qt::Vertical, this);
    m_sideSplitter->addWidget(summaryScroll);
    m_sideSplitter->addWidget(m_stats);
    m_sideSplitter->setStretchFactor(0, 1);
    m_sideSplitter->setStretchFactor(1, 1);
    m_mainSplitter = new QSplitter(Qt::Horizontal, this);
    m_mainSplitter->addWidget(m_tree);
    m_mainSplitter->addWidget(m_sideSplitter);
    m_mainSplitter->setStretchFactor(0, 3);
    m_mainSplitter->setStretchFactor(1, 1);
    m_mainSplitter->setChildrenCollapsible(false);
}

QWidget *CheckpointsWorkspace::buildComparePane()
{
    auto *compare = new QWidget(this);
    m_compareSummary = new QLabel(compare);
    m_compareSummary->setWordWrap(true);
    m_compareSummary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_compareTree = new QTreeWidget(compare);
    m_compareTree->setObjectName(QStringLiteral("comparisonTree"));
    m_compareTree->setHeaderLabels({tr("Key"), tr("A"), tr("B"), tr("Max |A − B|")});
    m_compareTree->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_compareTree->header()->setStretchLastSection(false);
    auto *compareLayout = new QVBoxLayout(compare);
    compareLayout->addWidget(m_compareSummary);
    compareLayout->addWidget(m_compareTree, 1);
    return compare;
}

void CheckpointsWorkspace::connectSignals()
{
    connect(m_open, &QPushButton::clicked, this, &CheckpointsWorkspace::showOpenDialog);
    connect(m_cancel, &QPushButton::clicked, this, &CheckpointsWorkspace::cancelLoading);
    connect(m_loadButton, &QPushButton::clicked, this, &CheckpointsWorkspace::showLoadDialog);
    connect(m_exportButton, &QPushButton::clicked, this, &CheckpointsWorkspace::requestExport);
    connect(m_saveButton, &QPushButton::clicked, this, &CheckpointsWorkspace::showSaveDialog);
    connect(m_fileCombo, &QComboBox::activated, this, &CheckpointsWorkspace::setCurrentCheckpoint);
    connect(m_filter, &QLineEdit::textChanged, this, [this](const QString &text) {
        // The proxy reads the plain text back as a substring (not as a regex).
        m_proxy->setFilterRegularExpression(text.trimmed());
        if (!text.trimmed().isEmpty())
            m_tree->expandAll();
        else
            m_tree->expandToDepth(0);
    });
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentChanged, this,
            &CheckpointsWorkspace::updateSelection);
    connect(m_statsJob, &TensorStatsJob::finished, this, [this](const TensorStats &stats) {
        m_stats->setStats(stats);
        Q_EMIT tensorStatsReady();
    });
    connect(m_openJob, &CheckpointOpenJob::progressChanged, this,
            [this](int, int, const QString &text) {
                if (!text.isEmpty())
                    Q_EMIT statusMessage(text);
            });
    connect(m_openJob, &CheckpointOpenJob::finished, this,
            [this](const QList<LoadedCheckpoint> &files,
                   const std::optional<CheckpointComparison> &comparison) {
                m_progress->hide();
                m_cancel->hide();
                m_checkpoints = files;
                m_comparison = comparison;
                for (const LoadedCheckpoint &file : files) {
                    if (m_settings) {
                        m_settings->addRecentCheckpoint(file.path);
                        m_settings->setLastCheckpointFolder(QFileInfo(file.path).absolutePath());
                    }
                }
                if (m_settings)
                    setRecentCheckpoints(m_settings->recentCheckpoints());
                Q_EMIT recentCheckpointsChanged();
                m_current = m_checkpoints.isEmpty() ? -1 : 0;
                showCheckpoint();
                buildComparison();
                if (m_comparison)
                    m_tabs->setCurrentIndex(1);
                const LoadedCheckpoint &first = files.constFirst();
                Q_EMIT statusMessage(
                    tr("Read %1 in %2 ms").arg(first.label).arg(first.milliseconds, 0, 'f', 0));
                Q_EMIT checkpointsLoaded();
            });
    connect(m_openJob, &CheckpointOpenJob::failed, this, [this](const QString &message) {
        m_progress->hide();
        m_cancel->hide();
        m_banner->showMessage(WarningBanner::Level::Error, message);
        Q_EMIT loadFailed(message);
    });
    connect(m_openJob, &CheckpointOpenJob::cancelled, this, [this] {
        m_progress->hide();
        m_cancel->hide();
        Q_EMIT statusMessage(tr("Reading cancelled"));
    });
}

CheckpointsWorkspace::~CheckpointsWorkspace() = default;

void CheckpointsWorkspace::openFiles(const QStringList &paths)
{
    if (paths.isEmpty())
        return;
    m_banner->dismiss();
    m_progress->show();
    m_cancel->show();
    m_openJob->start(paths, cudaDevices());
}

void CheckpointsWorkspace::openValue(const Value &value, const QString &label)
{
    LoadedCheckpoint loaded;
    loaded.label = label;
    loaded.file.root = value;
    loaded.totals = ckpt::tensorTotals(value);
    for (const StoragePtr &storage : storagesOf(value)) {
        if (!loaded.file.storages.isEmpty()
            && std::any_of(
                loaded.file.storages.cbegin(), loaded.file.storages.cend(),
                [&](const StorageInfo &info) { return info.savedLocation == storage->device; }))
            continue;
        StorageInfo info;
        info.savedLocation = storage->device;
        info.location = storage->device;
        loaded.file.storages.append(info);
    }
    loaded.file.notes.append(tr("Made in this session; not saved yet (Save As…)."));
    m_checkpoints.append(loaded);
    m_current = int(m_checkpoints.size()) - 1;
    showCheckpoint();
}

void CheckpointsWorkspace::showOpenDialog()
{
    const QStringList paths = QFileDialog::getOpenFileNames(
        this, tr("Open Checkpoint"), m_settings ? m_settings->lastCheckpointFolder() : QString(),
        tr("Checkpoints (%1);;All files (*)").arg(kFileFilter));
    openFiles(paths);
}

void CheckpointsWorkspace::showCompareDialog()
{
    const QStringList paths
        = QFileDialog::getOpenFileNames(this, tr("Choose Two Checkpoints to Compare"),
                                        m_settings ? m_settings->lastCheckpointFolder() : QString(),
                                        tr("Checkpoints (%1);;All files (*)").arg(kFileFilter));
    if (paths.size() == 1 && current() && !current()->path.isEmpty())
        openFiles({current()->path, paths.constFirst()});
    else
        openFiles(paths);
}

void CheckpointsWorkspace::cancelLoading()
{
    m_openJob->requestCancel();
}

bool CheckpointsWorkspace::isLoading() const
{
    return m_openJob->isRunning();
}

const LoadedCheckpoint *CheckpointsWorkspace::current() const
{
    return m_current >= 0 && m_current < m_checkpoints.size() ? &m_checkpoints[m_current] : nullptr;
}

void CheckpointsWorkspace::setCurrentCheckpoint(int index)
{
    if (index < 0 || index >= m_checkpoints.size() || index == m_current)
        return;
    m_current = index;
    showCheckpoint();
}

void CheckpointsWorkspace::showCheckpoint()
{
    const LoadedCheckpoint *file = current();
    m_stack->setCurrentWidget(file ? m_content : m_empty);
    m_loadButton->setEnabled(file);
    m_exportButton->setEnabled(file && !file->path.isEmpty());
    m_saveButton->setEnabled(file);
    m_filter->setEnabled(file);
    m_statsJob->cancel();
    {
        const QSignalBlocker blocker(m_fileCombo);
        m_fileCombo->clear();
        for (const LoadedCheckpoint &checkpoint : std::as_const(m_checkpoints))
            m_fileCombo->addItem(checkpoint.label, checkpoint.path);
        m_fileCombo->setCurrentIndex(m_current);
    }
    m_fileCombo->setVisible(m_checkpoints.size() > 1);
    m_tabs->setTabVisible(1, m_comparison.has_value());
    if (!file) {
        m_model->clear();
        m_fileLabel->clear();
        m_banner->dismiss();
        return;
    }
    m_fileLabel->setText(m_checkpoints.size() > 1 ? QString() : file->label);
    m_fileLabel->setToolTip(QDir::toNativeSeparators(file->path));
    m_model->setRoot(file->file.root, file->label);
    m_tree->expandToDepth(0);
    // Open the state dict the way a user would look for it.
    const QList<StateDictCandidate> candidates = findStateDicts(file->file.root);
    if (!candidates.isEmpty() && !candidates.constFirst().path.isEmpty())
        m_tree->expand(m_proxy->mapFromSource(m_model->indexForPath(candidates.constFirst().path)));
    if (!m_filter->text().isEmpty())
        m_tree->expandAll();
    m_tree->setCurrentIndex(m_proxy->index(0, 0));
    updateSummary();
    updateBanner();
    updateSelection();
}

void CheckpointsWorkspace::updateSummary()
{
    const LoadedCheckpoint *file = current();
    if (!file) {
        m_summary->clear();
        return;
    }
    const QLocale locale;
    const ckpt::TensorTotals &t = file->totals;
    QString html;
    html += QStringLiteral("<h3 style='margin:0'>%1</h3>").arg(file->label.toHtmlEscaped());
    if (!file->path.isEmpty()) {
        html += tr("%1 file · %2 on disk")
                    .arg(formatName(file->file.format),
                         CheckpointTreeModel::bytesText(file->fileSize));
        if (!file->file.archiveName.isEmpty())
            html += tr(" · archive “%1”").arg(file->file.archiveName.toHtmlEscaped());
        html += QStringLiteral("<br>");
    }
    html += tr("<b>%1</b> elements in %n tensor(s) · <b>%2</b> of tensor data", nullptr,
               int(t.tensors))
                .arg(locale.toString(t.elements), CheckpointTreeModel::bytesText(t.bytes));
    const QList<StateDictCandidate> candidates = findStateDicts(file->file.root);
    if (!candidates.isEmpty()) {
        const StateDictCandidate &best = candidates.constFirst();
        html += QStringLiteral("<br>")
            + tr("State dict: %1 (%n tensor(s), %2 elements)", nullptr, best.tensorCount)
                  .arg(keyPathText(best.path).toHtmlEscaped(), locale.toString(best.elementCount));
    }
    html += QStringLiteral("<h4 style='margin-bottom:2px'>%1</h4>").arg(tr("By dtype"))
        + tallyText(t.byDType);
    html += QStringLiteral("<h4 style='margin-bottom:2px'>%1</h4>").arg(tr("By saved device"))
        + tallyText(t.byDevice);
    QStringList lines = file->deviceNotes + file->file.notes;
    if (!file->file.warnings.isEmpty() || !lines.isEmpty()) {
        html += QStringLiteral("<h4 style='margin-bottom:2px'>%1</h4>").arg(tr("Notes"));
        for (const QString &warning : file->file.warnings)
            html += QStringLiteral("<span style='color:#b9770e'>⚠ %1</span><br>")
                        .arg(warning.toHtmlEscaped());
        for (const QString &note : lines)
            html += QStringLiteral("• %1<br>").arg(note.toHtmlEscaped());
    }
    m_summary->setText(html);
}

void CheckpointsWorkspace::updateBanner()
{
    const LoadedCheckpoint *file = current();
    if (!file) {
        m_banner->dismiss();
        return;
    }
    QStringList parts = file->deviceNotes;
    if (!file->file.warnings.isEmpty()) {
        parts.append(tr("%n value(s) not read as torch would (see Notes): %1", nullptr,
                        int(file->file.warnings.size()))
                         .arg(file->file.warnings.constFirst()));
    }
    if (parts.isEmpty()) {
        m_banner->dismiss();
        return;
    }
    m_banner->showMessage(file->file.warnings.isEmpty() ? WarningBanner::Level::Info
                                                        : WarningBanner::Level::Warning,
                          parts.join(u' '));
}

void CheckpointsWorkspace::updateSelection()
{
    const QModelIndex index = m_proxy->mapToSource(m_tree->currentIndex());
    const Value value = m_model->valueAt(index.siblingAtColumn(0));
    if (!index.isValid() || !value.isTensor()) {
        m_statsJob->cancel();
        m_stats->setMessage(
            index.isValid() ? tr("“%1” is a %2: select a tensor to see its "
                                 "statistics.")
                                  .arg(index.siblingAtColumn(0).data().toString(), value.typeName())
                            : tr("Select a tensor to see its statistics."));
        return;
    }
    const Tensor tensor = value.toTensor();
    const QString key = index.siblingAtColumn(0).data(CheckpointTreeModel::FullKeyRole).toString();
    m_stats->setPending(key,
                        QStringLiteral("%1 %2 · %3")
                            .arg(dtypeName(tensor.dtype()),
                                 CheckpointTreeModel::shapeText(tensor.shape), tensor.device()));
    m_statsJob->start(key, tensor);
}

KeyPath CheckpointsWorkspace::selectedDictPath() const
{
    const QModelIndex index = m_proxy->mapToSource(m_tree->currentIndex()).siblingAtColumn(0);
    if (!index.isValid() || !index.data(CheckpointTreeModel::IsDictRole).toBool())
        return {};
    return index.data(CheckpointTreeModel::KeyPathRole).toStringList();
}

void CheckpointsWorkspace::selectPath(const KeyPath &path)
{
    const QModelIndex source = m_model->indexForPath(path);
    const QModelIndex index = m_proxy->mapFromSource(source);
    if (!index.isValid())
        return;
    m_tree->setCurrentIndex(index);
    m_tree->scrollTo(index);
}

void CheckpointsWorkspace::selectFirstTensor()
{
    const LoadedCheckpoint *file = current();
    if (!file)
        return;
    const QList<StateDictCandidate> candidates = findStateDicts(file->file.root);
    if (candidates.isEmpty())
        return;
    const Result<Value> dict = valueAt(file->file.root, candidates.constFirst().path);
    if (!dict)
        return;
    for (const Value::Entry &entry : dict->entries()) {
        if (entry.first.isString() && entry.second.isTensor()) {
            selectPath(candidates.constFirst().path + KeyPath{entry.first.toString()});
            return;
        }
    }
}

void CheckpointsWorkspace::buildComparison()
{
    m_compareTree->clear();
    m_tabs->setTabVisible(1, m_comparison.has_value());
    if (!m_comparison) {
        m_compareSummary->clear();
        return;
    }
    const CheckpointComparison &c = *m_comparison;
    const StateDictDiff &d = c.diff;
    m_compareSummary->setText(tr("<b>A</b>: %1 %2 &nbsp; <b>B</b>: %3 %4<br>%5")
                                  .arg(c.labelA.toHtmlEscaped(), c.pathA.toHtmlEscaped(),
                                       c.labelB.toHtmlEscaped(), c.pathB.toHtmlEscaped(),
                                       d.summary.toHtmlEscaped()));
    auto group = [this](const QString &title, int count) {
        auto *item = new QTreeWidgetItem(m_compareTree, {title});
        item->setText(1, QString::number(count));
        item->setFirstColumnSpanned(false);
        QFont bold = item->font(0);
        bold.setBold(true);
        item->setFont(0, bold);
        return item;
    };
    auto *onlyA = group(tr("Only in A"), int(d.onlyInA.size()));
    for (const QString &key : d.onlyInA)
        new QTreeWidgetItem(onlyA, {key, tr("present"), QString()});
    auto *onlyB = group(tr("Only in B"), int(d.onlyInB.size()));
    for (const QString &key : d.onlyInB)
        new QTreeWidgetItem(onlyB, {key, QString(), tr("present")});
    auto *shapes = group(tr("Different shapes"), int(d.shapeDiffers.size()));
    for (const TensorDifference &t : d.shapeDiffers) {
        new QTreeWidgetItem(shapes,
                            {t.key, CheckpointTreeModel::shapeText(t.shapeA),
                             CheckpointTreeModel::shapeText(t.shapeB)});
    }
    auto *values = group(tr("Different values"), 0);
    int differing = 0;
    for (const TensorDifference &t : d.compared) {
        if (t.identical)
            continue;
        ++differing;
        auto *item = new QTreeWidgetItem(
            values,
            {t.key, dtypeName(t.dtypeA) + u' ' + CheckpointTreeModel::shapeText(t.shapeA),
             dtypeName(t.dtypeB) + u' ' + CheckpointTreeModel::shapeText(t.shapeB),
             QString::number(t.maxAbsDiff, 'g', 6)});
        if (t.nanMismatches > 0)
            item->setToolTip(
                3, tr("%n element(s) NaN on one side only", nullptr, int(t.nanMismatches)));
    }
    values->setText(1, QString::number(differing));
    if (!d.otherDiffers.isEmpty()) {
        auto *other = group(tr("Other values differ"), int(d.otherDiffers.size()));
        for (const QString &key : d.otherDiffers)
            new QTreeWidgetItem(other, {key});
    }
    group(tr("Identical tensors"), d.identicalCount);
    for (int i = 0; i < m_compareTree->topLevelItemCount(); ++i) {
        QTreeWidgetItem *item = m_compareTree->topLevelItem(i);
        item->setExpanded(item->childCount() > 0 && item->childCount() <= 200);
    }
}

void CheckpointsWorkspace::showComparison()
{
    if (m_comparison)
        m_tabs->setCurrentIndex(1);
}

LoadIntoModelDialog *CheckpointsWorkspace::createLoadDialog()
{
    const LoadedCheckpoint *file = current();
    if (!file)
        return nullptr;
    auto *dialog = new LoadIntoModelDialog(*file, m_settings, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    // With two files open, the other one is the natural target.
    if (m_checkpoints.size() > 1) {
        const LoadedCheckpoint &other = m_checkpoints[m_current == 0 ? 1 : 0];
        const QList<StateDictCandidate> candidates = findStateDicts(other.file.root);
        if (!candidates.isEmpty()) {
            const Result<Value> dict = valueAt(other.file.root, candidates.constFirst().path);
            if (dict)
                dialog->setTarget(targetFromStateDict(dict.value()), other.label);
        }
    }
    const QString label = file->label;
    connect(dialog, &LoadIntoModelDialog::saveRepairedRequested, this,
            [this, label](const Value &value) {
                SaveCheckpointDialog *save = createSaveDialog(value, label);
                if (save)
                    save->open();
            });
    connect(dialog, &QDialog::accepted, this, [this, dialog, label] {
        const Result<Value> value = dialog->repairedStateDict();
        if (!value) {
            m_banner->showMessage(WarningBanner::Level::Error, value.errorMessage());
            return;
        }
        openValue(value.value(), tr("%1 (repaired)").arg(label));
    });
    return dialog;
}

void CheckpointsWorkspace::showLoadDialog()
{
    if (LoadIntoModelDialog *dialog = createLoadDialog())
        dialog->open();
}

void CheckpointsWorkspace::requestExport()
{
    const LoadedCheckpoint *file = current();
    if (file && !file->path.isEmpty())
        Q_EMIT exportRequested(file->path);
}

SaveCheckpointDialog *CheckpointsWorkspace::createSaveDialog(const Value &value,
                                                             const QString &label)
{
    const LoadedCheckpoint *file = current();
    if (!file && value.isNone())
        return nullptr;
    SaveCheckpointDialog *dialog = nullptr;
    if (!value.isNone()) {
        dialog = new SaveCheckpointDialog(value, QString(), {}, m_settings, this);
        if (file && !file->path.isEmpty()) {
            const QFileInfo info(file->path);
            dialog->setPath(
                info.dir().filePath(info.completeBaseName() + QStringLiteral("_repaired.pt")));
        }
        if (!label.isEmpty())
            dialog->setWindowTitle(tr("Save Repaired %1 As").arg(label));
    } else {
        dialog = new SaveCheckpointDialog(file->file.root, file->path, selectedDictPath(),
                                          m_settings, this);
    }
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &SaveCheckpointDialog::saved, this,
            [this](const QString &path, const QStringList &) {
                if (m_settings) {
                    m_settings->addRecentCheckpoint(path);
                    setRecentCheckpoints(m_settings->recentCheckpoints());
                }
                Q_EMIT recentCheckpointsChanged();
                Q_EMIT statusMessage(tr("Saved %1").arg(QDir::toNativeSeparators(path)));
                Q_EMIT checkpointSaved(path);
            });
    return dialog;
}

void CheckpointsWorkspace::showSaveDialog()
{
    if (SaveCheckpointDialog *dialog = createSaveDialog())
        dialog->open();
}

void CheckpointsWorkspace::focusFilter()
{
    m_filter->setFocus();
    m_filter->selectAll();
}

void CheckpointsWorkspace::setRecentCheckpoints(const QStringList &paths)
{
    m_recent = paths;
    updateRecentMenu();
}

void CheckpointsWorkspace::updateRecentMenu()
{
    m_recentMenu->clear();
    for (const QString &path : std::as_const(m_recent)) {
        m_recentMenu->addAction(QDir::toNativeSeparators(path), this,
                                [this, path] { openFiles({path}); });
    }
    m_recentButton->setEnabled(!m_recent.isEmpty());

    // The empty page lists the first few as buttons.
    QLayout *layout = m_recentList->layout();
    while (QLayoutItem *item = layout->takeAt(0)) {
        delete item->widget();
        delete item;
    }
    if (!m_recent.isEmpty()) {
        auto *title = new QLabel(tr("Recent checkpoints"), m_recentList);
        title->setAlignment(Qt::AlignHCenter);
        layout->addWidget(title);
    }
    for (const QString &path : m_recent.mid(0, 5)) {
        auto *button = new QPushButton(QFileInfo(path).fileName(), m_recentList);
        button->setFlat(true);
        button->setToolTip(QDir::toNativeSeparators(path));
        connect(button, &QPushButton::clicked, this, [this, path] { openFiles({path}); });
        layout->addWidget(button);
    }
}

void CheckpointsWorkspace::saveState()
{
    if (!m_settings)
        return;
    m_settings->setSplitterState(QStringLiteral("checkpoints"), m_mainSplitter->saveState());
    m_settings->setSplitterState(QStringLiteral("checkpointsSide"), m_sideSplitter->saveState());
}

} // namespace ifs
