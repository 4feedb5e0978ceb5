#include "checkpoints/loadintomodeldialog.h"

#include "base/settings.h"
#include "checkpoint/checkpointfiles.h"
#include "checkpoints/checkpointtreemodel.h"
#include "torch/runtime.h"
#include "training/models.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTimer>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace ifs {

using namespace ckpt;

namespace {

enum OperationKind { kStrip, kAdd, kRegex, kExtract, kDrop, kCast, kDevices };

/// fnmatch's escape: a key as a pattern that matches only itself.
QString globEscape(const QString &key)
{
    QString out;
    for (QChar c : key) {
        if (c == u'*' || c == u'?' || c == u'[')
            out += u'[' + QString(c) + u']';
        else
            out += c;
    }
    return out;
}

bool changesKeys(const Operation &op)
{
    return !std::holds_alternative<CastFloat>(op) && !std::holds_alternative<MapDevices>(op);
}

} // namespace

LoadIntoModelDialog::LoadIntoModelDialog(const LoadedCheckpoint &source, Settings *settings,
                                         QWidget *parent)
    : QDialog(parent)
    , m_source(source)
    , m_settings(settings)
    , m_targetJob(new CheckpointOpenJob(this))
    , m_reportTimer(new QTimer(this))
{
    setWindowTitle(tr("Load into Model — %1").arg(source.label));
    setObjectName(QStringLiteral("loadIntoModelDialog"));
    m_reportTimer->setSingleShot(true);
    m_reportTimer->setInterval(120);
    connect(m_reportTimer, &QTimer::timeout, this, &LoadIntoModelDialog::refreshReport);

    QFormLayout *form = buildTargetForm();
    QGroupBox *opsBox = buildOperationsBox();
    m_mismatched = new QComboBox(this);
    m_mismatched->setObjectName(QStringLiteral("mismatchedCombo"));
    m_mismatched->addItem(tr("Leave them out: the model keeps its own values "
                             "(load_state_dict(strict=False))"));
    m_mismatched->addItem(tr("Keep them: load_state_dict raises on a shape mismatch"));

    QGroupBox *reportBox = buildReportBox();

    auto *splitter = new QSplitter(Qt::Vertical, this);
    auto *top = new QWidget(splitter);
    auto *topLayout = new QVBoxLayout(top);
    topLayout->setContentsMargins(0, 0, 0, 0);
    topLayout->addWidget(opsBox, 1);
    auto *mismatchedForm = new QFormLayout;
    mismatchedForm->addRow(tr("Mismatched shapes:"), m_mismatched);
    topLayout->addLayout(mismatchedForm);
    splitter->addWidget(top);
    splitter->addWidget(reportBox);
    splitter->setStretchFactor(0, 2);
    splitter->setStretchFactor(1, 3);

    auto *box = new QDialogButtonBox(this);
    m_saveRepaired = box->addButton(tr("Save Repaired As…"), QDialogButtonBox::ActionRole);
    m_ok = box->addButton(tr("Use Repaired"), QDialogButtonBox::AcceptRole);
    m_ok->setToolTip(tr("Open the repaired state dict in the Checkpoints workspace."));
    box->addButton(QDialogButtonBox::Cancel);
    connect(box, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(box, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto *layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(splitter, 1);
    layout->addWidget(box);
    resize(820, 720);

    connectSignals();
    updateList();
}

LoadIntoModelDialog::~LoadIntoModelDialog() = default;

QFormLayout *LoadIntoModelDialog::buildTargetForm()
{
    m_targetLabel = new QLabel(tr("No target yet: choose one of the app's models or a "
                                  "checkpoint of the model to load into."),
                               this);
    m_targetLabel->setWordWrap(true);
    auto *chooseTarget = new QPushButton(tr("Choose Model Checkpoint…"), this);
    chooseTarget->setObjectName(QStringLiteral("chooseTargetButton"));
    // Or one of the app's models (torchvision's names), with a class count.
    auto *appModel = new QComboBox(this);
    appModel->setObjectName(QStringLiteral("appModelCombo"));
    appModel->addItem(tr("App model…"), QString());
    for (const ModelArch &arch : modelArchitectures())
        appModel->addItem(arch.title, arch.name);
    appModel->setToolTip(
        tr("Target one of the models the app trains, with torchvision's key names"));
    auto *classes = new QSpinBox(this);
    classes->setObjectName(QStringLiteral("appModelClasses"));
    classes->setRange(1, 100000);
    classes->setValue(1000);
    classes->setSuffix(tr(" classes"));
    classes->setEnabled(false);
    auto applyAppModel = [this, appModel, classes] {
        const QString arch = appModel->currentData().toString();
        classes->setEnabled(!arch.isEmpty());
        if (arch.isEmpty())
            return;
        const Result<TargetSpec> target = modelTarget(arch, classes->value());
        if (!target) {
            m_targetLabel->setText(target.errorMessage());
            return;
        }
        setTarget(target.value(),
                  tr("%1 with %2 classes").arg(appModel->currentText()).arg(classes->value()));
    };
    connect(appModel, &QComboBox::currentIndexChanged, this, applyAppModel);
    connect(classes, &QSpinBox::valueChanged, this, applyAppModel);
    auto *targetRow = new QHBoxLayout;
    targetRow->addWidget(m_targetLabel, 1);
    targetRow->addWidget(appModel);
    targetRow->addWidget(classes);
    targetRow->addWidget(chooseTarget);

    m_device = new QComboBox(this);
    m_device->setObjectName(QStringLiteral("targetDeviceCombo"));
    m_device->addItem(tr("CPU"), QStringLiteral("cpu"));
    for (const QString &device : cudaDevices())
        m_device->addItem(device, device);
    auto *saved = new QLabel(
        tr("saved on: %1").arg(m_source.file.savedLocations().join(QStringLiteral(", "))), this);
    saved->setEnabled(false);
    auto *deviceRow = new QHBoxLayout;
    deviceRow->addWidget(m_device);
    deviceRow->addWidget(saved, 1);

    m_stateDict = new QComboBox(this);
    m_stateDict->setObjectName(QStringLiteral("stateDictCombo"));
    for (const StateDictCandidate &candidate : findStateDicts(m_source.file.root)) {
        m_stateDict->addItem(tr("%1 — %n tensor(s)", nullptr, candidate.tensorCount)
                                 .arg(keyPathText(candidate.path)),
                             candidate.path);
    }
    if (m_stateDict->count() > 0)
        m_path = m_stateDict->itemData(0).toStringList();

    auto *form = new QFormLayout;
    form->addRow(tr("Model keys:"), targetRow);
    form->addRow(tr("Target device:"), deviceRow);
    form->addRow(tr("State dict:"), m_stateDict);
    connect(chooseTarget, &QPushButton::clicked, this, &LoadIntoModelDialog::chooseTargetFile);
    return form;
}

QGroupBox *LoadIntoModelDialog::buildOperationsBox()
{
    m_list = new QListWidget(this);
    m_list->setObjectName(QStringLiteral("operationList"));
    m_list->setToolTip(tr("Applied in order. Double-click to edit; Delete removes."));
    auto *add = new QPushButton(tr("Add"), this);
    auto *addMenu = new QMenu(add);
    const std::pair<int, QString> kinds[] = {
        {kStrip, tr("Strip prefix…")},    {kAdd, tr("Add prefix…")},
        {kRegex, tr("Rename by regex…")}, {kExtract, tr("Extract nested dict…")},
        {kDrop, tr("Drop keys (glob)…")}, {kCast, tr("Cast floating point…")},
        {kDevices, tr("Map devices…")},
    };
    for (const auto &[kind, text] : kinds)
        addMenu->addAction(text, this, [this, kind = kind] { addOperation(kind); });
    add->setMenu(addMenu);
    auto *remove = new QPushButton(tr("Remove"), this);
    auto *up = new QPushButton(tr("Up"), this);
    auto *down = new QPushButton(tr("Down"), this);
    m_auto = new QPushButton(tr("Auto"), this);
    m_auto->setObjectName(QStringLiteral("autoButton"));
    m_auto->setToolTip(tr("Propose the lossless renames that make the most keys match."));
    m_auto->setEnabled(false);
    auto *buttons = new QVBoxLayout;
    for (QPushButton *button : {m_auto, add, remove, up, down})
        buttons->addWidget(button);
    buttons->addStretch(1);
    auto *opsBox = new QGroupBox(tr("Repair operations"), this);
    auto *opsLayout = new QHBoxLayout(opsBox);
    opsLayout->addWidget(m_list, 1);
    opsLayout->addLayout(buttons);

    connect(m_auto, &QPushButton::clicked, this, &LoadIntoModelDialog::autoRepair);
    connect(remove, &QPushButton::clicked, this, [this] {
        const int row = m_list->currentRow();
        if (row >= 0 && row < m_operations.size()) {
            m_operations.removeAt(row);
            updateList();
            m_list->setCurrentRow(std::min(row, int(m_operations.size()) - 1));
        }
    });
    connect(up, &QPushButton::clicked, this, [this] { moveOperation(-1); });
    connect(down, &QPushButton::clicked, this, [this] { moveOperation(1); });
    connect(m_list, &QListWidget::itemActivated, this,
            [this](QListWidgetItem *item) { editOperation(m_list->row(item)); });
    auto *deleteAction = new QAction(m_list);
    deleteAction->setShortcut(QKeySequence::Delete);
    deleteAction->setShortcutContext(Qt::WidgetShortcut);
    connect(deleteAction, &QAction::triggered, remove, &QPushButton::click);
    m_list->addAction(deleteAction);
    return opsBox;
}

QGroupBox *LoadIntoModelDialog::buildReportBox()
{
    m_headline = new QLabel(this);
    m_headline->setObjectName(QStringLiteral("reportHeadline"));
    QFont bold = m_headline->font();
    bold.setBold(true);
    bold.setPointSizeF(bold.pointSizeF() * 1.15);
    m_headline->setFont(bold);
    m_headline->setWordWrap(true);
    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_details = new QTreeWidget(this);
    m_details->setObjectName(QStringLiteral("reportTree"));
    m_details->setHeaderLabels({tr("Keys"), tr("Count")});
    m_details->header()->setStretchLastSection(false);
    m_details->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_details->header()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
    auto *reportBox = new QGroupBox(tr("Match report (live)"), this);
    auto *reportLayout = new QVBoxLayout(reportBox);
    reportLayout->addWidget(m_headline);
    reportLayout->addWidget(m_summary);
    reportLayout->addWidget(m_details, 1);
    return reportBox;
}

void LoadIntoModelDialog::connectSignals()
{
    connect(m_stateDict, &QComboBox::currentIndexChanged, this, [this](int index) {
        m_path = m_stateDict->itemData(index).toStringList();
        scheduleReport();
    });
    connect(m_mismatched, &QComboBox::currentIndexChanged, this,
            &LoadIntoModelDialog::scheduleReport);
    connect(m_saveRepaired, &QPushButton::clicked, this, [this] {
        const Result<Value> value = repairedStateDict();
        if (value)
            Q_EMIT saveRepairedRequested(value.value());
    });
    connect(
        m_targetJob, &CheckpointOpenJob::finished, this,
        [this](const QList<LoadedCheckpoint> &files, const std::optional<CheckpointComparison> &) {
            const LoadedCheckpoint &file = files.constFirst();
            const QList<StateDictCandidate> candidates = findStateDicts(file.file.root);
            if (candidates.isEmpty()) {
                Q_EMIT targetFailed(tr("“%1” holds no state dict.").arg(file.label));
                m_targetLabel->setText(tr("“%1” holds no state dict.").arg(file.label));
                return;
            }
            const Result<Value> dict = valueAt(file.file.root, candidates.constFirst().path);
            setTarget(targetFromStateDict(dict.ok() ? dict.value() : Value()),
                      tr("%1 %2").arg(file.label, keyPathText(candidates.constFirst().path)));
        });
    connect(m_targetJob, &CheckpointOpenJob::failed, this, [this](const QString &message) {
        m_targetLabel->setText(message);
        Q_EMIT targetFailed(message);
    });
}

void LoadIntoModelDialog::setTarget(const TargetSpec &target, const QString &description)
{
    m_target = target;
    m_targetLabel->setText(tr("%1 — %n key(s)", nullptr, int(target.size())).arg(description));
    m_auto->setEnabled(!target.isEmpty());
    refreshReport();
    Q_EMIT targetChanged();
}

void LoadIntoModelDialog::setTargetFile(const QString &path)
{
    m_targetLabel->setText(tr("Reading %1…").arg(QFileInfo(path).fileName()));
    m_targetJob->start({path}, cudaDevices());
}

void LoadIntoModelDialog::chooseTargetFile()
{
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Checkpoint of the Model to Load Into"),
        m_settings ? m_settings->lastCheckpointFolder() : QString(),
        tr("Checkpoints (%1);;All files (*)").arg(checkpointNameFilter()));
    if (!path.isEmpty())
        setTargetFile(path);
}

void LoadIntoModelDialog::setOperations(const QList<Operation> &operations)
{
    m_operations = operations;
    updateList();
}

void LoadIntoModelDialog::autoRepair()
{
    const Result<RepairProposal> proposal = proposeRepair(m_source.file.root, m_target);
    if (!proposal) {
        m_headline->setText(proposal.errorMessage());
        return;
    }
    for (int i = 0; i < m_stateDict->count(); ++i) {
        if (m_stateDict->itemData(i).toStringList() == proposal->path) {
            const QSignalBlocker blocker(m_stateDict);
            m_stateDict->setCurrentIndex(i);
        }
    }
    m_path = proposal->path;
    m_operations = proposal->operations;
    updateList();
    refreshReport();
    QStringList suggestions;
    for (const RepairSuggestion &suggestion : proposal->suggestions)
        suggestions.append(
            QStringLiteral("• %1 — %2").arg(describe(suggestion.operation), suggestion.reason));
    if (!suggestions.isEmpty()) {
        m_summary->setText(m_summary->text() + u'\n' + tr("Suggested (not applied):") + u'\n'
                           + suggestions.join(u'\n'));
    }
}

void LoadIntoModelDialog::updateList()
{
    m_list->clear();
    for (const Operation &op : std::as_const(m_operations))
        m_list->addItem(describe(op));
    if (m_operations.isEmpty()) {
        auto *item = new QListWidgetItem(tr("No operations: the state dict as it is."));
        item->setFlags(Qt::NoItemFlags);
        m_list->addItem(item);
    }
    scheduleReport();
}

void LoadIntoModelDialog::scheduleReport()
{
    m_reportTimer->start();
}

void LoadIntoModelDialog::moveOperation(int delta)
{
    const int row = m_list->currentRow();
    const int to = row + delta;
    if (row < 0 || to < 0 || to >= m_operations.size() || row >= m_operations.size())
        return;
    m_operations.swapItemsAt(row, to);
    updateList();
    m_list->setCurrentRow(to);
}

void LoadIntoModelDialog::addOperation(int kind)
{
    bool ok = false;
    Operation op;
    switch (kind) {
    case kStrip:
    case kAdd: {
        const QString prefix = QInputDialog::getText(
            this, kind == kStrip ? tr("Strip Prefix") : tr("Add Prefix"), tr("Prefix:"),
            QLineEdit::Normal, QStringLiteral("module."), &ok);
        if (!ok || prefix.isEmpty())
            return;
        op = kind == kStrip ? Operation(StripPrefix{prefix, true}) : Operation(AddPrefix{prefix});
        break;
    }
    case kRegex: {
        const QString pattern
            = QInputDialog::getText(this, tr("Rename by Regex"), tr("Pattern (Python re):"),
                                    QLineEdit::Normal, QString(), &ok);
        if (!ok || pattern.isEmpty())
            return;
        const QString replacement = QInputDialog::getText(this, tr("Rename by Regex"),
                                                          tr("Replacement (\\1 for groups):"),
                                                          QLineEdit::Normal, QString(), &ok);
        if (!ok)
            return;
        op = RenameRegex{pattern, replacement};
        break;
    }
    case kExtract: {
        Result<Value> here = valueAt(m_source.file.root, m_path);
        QStringList paths;
        if (here) {
            for (const StateDictCandidate &candidate : findStateDicts(here.value())) {
                if (!candidate.path.isEmpty())
                    paths.append(candidate.path.join(u'/'));
            }
        }
        const QString chosen
            = QInputDialog::getItem(this, tr("Extract Nested Dict"),
                                    tr("Dict (keys separated by /):"), paths, 0, true, &ok);
        if (!ok || chosen.isEmpty())
            return;
        op = ExtractDict{chosen.split(u'/')};
        break;
    }
    case kDrop: {
        const QString patterns = QInputDialog::getText(
            this, tr("Drop Keys"), tr("Glob patterns, separated by spaces:"), QLineEdit::Normal,
            QStringLiteral("fc.*"), &ok);
        if (!ok || patterns.trimmed().isEmpty())
            return;
        op = DropKeys{patterns.split(u' ', Qt::SkipEmptyParts)};
        break;
    }
    case kCast: {
        const QStringList types = {QStringLiteral("float32"), QStringLiteral("float16"),
                                   QStringLiteral("bfloat16"), QStringLiteral("float64")};
        const QString chosen = QInputDialog::getItem(this, tr("Cast Floating Point"), tr("To:"),
                                                     types, 0, false, &ok);
        if (!ok)
            return;
        op = CastFloat{dtypeFromName(chosen).value_or(DType::Float32), {}};
        break;
    }
    case kDevices: {
        QStringList devices = {QStringLiteral("cpu")};
        devices += cudaDevices();
        const QString chosen = QInputDialog::getItem(
            this, tr("Map Devices"), tr("Every storage to:"), devices, 0, true, &ok);
        if (!ok || chosen.isEmpty())
            return;
        op = MapDevices{chosen, {}};
        break;
    }
    default:
        return;
    }
    m_operations.append(op);
    updateList();
    m_list->setCurrentRow(int(m_operations.size()) - 1);
}

void LoadIntoModelDialog::editOperation(int row)
{
    if (row < 0 || row >= m_operations.size())
        return;
    Operation &op = m_operations[row];
    bool ok = false;
    if (auto *strip = std::get_if<StripPrefix>(&op)) {
        const QString prefix = QInputDialog::getText(this, tr("Strip Prefix"), tr("Prefix:"),
                                                     QLineEdit::Normal, strip->prefix, &ok);
        if (ok && !prefix.isEmpty())
            strip->prefix = prefix;
    } else if (auto *addPrefix = std::get_if<AddPrefix>(&op)) {
        const QString prefix = QInputDialog::getText(this, tr("Add Prefix"), tr("Prefix:"),
                                                     QLineEdit::Normal, addPrefix->prefix, &ok);
        if (ok && !prefix.isEmpty())
            addPrefix->prefix = prefix;
    } else if (auto *regex = std::get_if<RenameRegex>(&op)) {
        const QString pattern = QInputDialog::getText(this, tr("Rename by Regex"), tr("Pattern:"),
                                                      QLineEdit::Normal, regex->pattern, &ok);
        if (!ok)
            return;
        const QString replacement
            = QInputDialog::getText(this, tr("Rename by Regex"), tr("Replacement:"),
                                    QLineEdit::Normal, regex->replacement, &ok);
        if (ok) {
            regex->pattern = pattern;
            regex->replacement = replacement;
        }
    } else if (auto *drop = std::get_if<DropKeys>(&op)) {
        const QString patterns
            = QInputDialog::getText(this, tr("Drop Keys"), tr("Patterns:"), QLineEdit::Normal,
                                    drop->patterns.join(u' '), &ok);
        if (ok)
            drop->patterns = patterns.split(u' ', Qt::SkipEmptyParts);
    } else {
        return; // the others are re-added rather than edited
    }
    updateList();
    m_list->setCurrentRow(row);
}

QString LoadIntoModelDialog::targetDevice() const
{
    return m_device->currentData().toString();
}

void LoadIntoModelDialog::refreshReport()
{
    m_reportTimer->stop();
    m_details->clear();
    if (m_target.isEmpty()) {
        m_report = {};
        m_headline->setText(tr("Choose the model's keys to see how the checkpoint fits."));
        m_summary->clear();
        m_ok->setEnabled(false);
        m_saveRepaired->setEnabled(false);
        Q_EMIT reportUpdated();
        return;
    }
    // Renames only: casts and device tags change no key or shape, and would copy tensor data.
    QList<Operation> keyOperations;
    for (const Operation &op : std::as_const(m_operations)) {
        if (changesKeys(op))
            keyOperations.append(op);
    }
    const Result<RepairResult> applied = applyOperations(m_source.file.root, keyOperations, m_path);
    if (!applied) {
        m_report = {};
        m_headline->setText(QStringLiteral("<span style='color:#c0392b'>%1</span>")
                                .arg(applied.errorMessage().toHtmlEscaped()));
        m_summary->clear();
        m_ok->setEnabled(false);
        m_saveRepaired->setEnabled(false);
        Q_EMIT reportUpdated();
        return;
    }
    const Result<Value> dict = valueAt(applied->value, m_path);
    m_report = loadReport(dict.ok() ? dict.value() : Value(), m_target);
    const LoadReport &r = m_report;
    const QString color = r.loadsStrictly() ? QStringLiteral("#1e8449")
        : r.matched.isEmpty()               ? QStringLiteral("#c0392b")
                                            : QStringLiteral("#b9770e");
    const QString text = r.loadsStrictly()
        ? tr("All %1 keys match: load_state_dict(strict=True) succeeds.").arg(r.matched.size())
        : tr("%1 of %2 model keys match · %3 missing · %4 unexpected · %5 mismatched")
              .arg(r.matched.size())
              .arg(r.targetCount)
              .arg(r.missing.size())
              .arg(r.unexpected.size())
              .arg(r.mismatched.size());
    m_headline->setText(QStringLiteral("<span style='color:%1'>%2</span>").arg(color, text));
    QStringList steps;
    for (const OperationReport &step : applied->steps)
        steps.append(QStringLiteral("• ") + step.summary);
    m_summary->setText(steps.join(u'\n') + (steps.isEmpty() ? QString() : QStringLiteral("\n"))
                       + r.summary);

    auto addGroup = [this](const QString &title, int count, const QList<KeyGroup> &groups,
                           const QString &kind) {
        auto *parent = new QTreeWidgetItem(m_details, {title, QString::number(count)});
        for (const KeyGroup &group : groups) {
            auto *item = new QTreeWidgetItem(
                parent, {group.text(kind), QString::number(group.keys.size())});
            for (const QString &key : group.keys)
                new QTreeWidgetItem(item, {key});
        }
        parent->setExpanded(count > 0 && count < 40);
    };
    auto *matched
        = new QTreeWidgetItem(m_details, {tr("Matched"), QString::number(r.matched.size())});
    for (const QString &key : r.matched)
        new QTreeWidgetItem(matched, {key});
    addGroup(tr("Missing (the model keeps its initial values)"), int(r.missing.size()),
             r.missingGroups, tr("missing"));
    addGroup(tr("Unexpected (ignored with strict=False)"), int(r.unexpected.size()),
             r.unexpectedGroups, tr("unexpected"));
    auto *mismatched = new QTreeWidgetItem(m_details,
                                           {m_mismatched->currentIndex() == 0
                                                ? tr("Mismatched shapes (left out)")
                                                : tr("Mismatched shapes (kept: fails)"),
                                            QString::number(r.mismatched.size())});
    for (const KeyMismatch &m : r.mismatched) {
        new QTreeWidgetItem(
            mismatched,
            {tr("%1: %2 in the checkpoint, %3 in the model")
                 .arg(m.key,
                      m.sourceType == u"torch.Tensor" || m.sourceType == u"torch.nn.Parameter"
                          ? CheckpointTreeModel::shapeText(m.sourceShape)
                          : m.sourceType,
                      CheckpointTreeModel::shapeText(m.targetShape))});
    }
    mismatched->setExpanded(!r.mismatched.isEmpty());
    if (!r.dtypeDiffers.isEmpty()) {
        auto *dtypes = new QTreeWidgetItem(
            m_details,
            {tr("Other dtype (converted on load)"), QString::number(r.dtypeDiffers.size())});
        for (const KeyMismatch &m : r.dtypeDiffers)
            new QTreeWidgetItem(
                dtypes,
                {tr("%1: %2 → %3").arg(m.key, dtypeName(m.sourceDType), dtypeName(m.targetDType))});
    }
    m_ok->setEnabled(!r.matched.isEmpty());
    m_saveRepaired->setEnabled(!r.matched.isEmpty());
    Q_EMIT reportUpdated();
}

Result<Value> LoadIntoModelDialog::repairedStateDict() const
{
    QList<Operation> operations = m_operations;
    if (m_mismatched->currentIndex() == 0 && !m_report.mismatched.isEmpty()) {
        QStringList patterns;
        for (const KeyMismatch &m : m_report.mismatched)
            patterns.append(globEscape(m.key));
        operations.append(DropKeys{patterns});
    }
    operations.append(MapDevices{targetDevice(), {}});
    const Result<RepairResult> applied = applyOperations(m_source.file.root, operations, m_path);
    if (!applied)
        return applied.error();
    return valueAt(applied->value, m_path);
}

} // namespace ifs
