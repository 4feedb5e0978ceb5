#include "transforms/pipelinemodel.h"

#include <QApplication>
#include <QDataStream>
#include <QFont>
#include <QIODevice>
#include <QMimeData>
#include <QPalette>
#include <QStyle>

#include <algorithm>

namespace ifs {

namespace {

const QString kRowsMime = QStringLiteral("application/x-ifstudio-pipeline-rows");

/// `transforms.Name(args)` exactly as toTorchvisionSource() prints the step.
QString printedStep(const TransformStep &step)
{
    const QString source = toTorchvisionSource(TransformPipeline{{step}});
    // "transforms.Compose([\n    <step>,\n])"
    const qsizetype start = source.indexOf(u'\n') + 1;
    const qsizetype end = source.lastIndexOf(u'\n');
    QString line = source.mid(start, end - start).trimmed();
    if (line.endsWith(u','))
        line.chop(1);
    return line;
}

/// The one transform call written in a comment line's text, if that is all it holds.
std::optional<TransformStep> commentedStep(const QString &text)
{
    if (text.isEmpty() || !(text.front().isLetter() || text.front() == u'_'))
        return std::nullopt;
    // As a list, so a trailing comma and a trailing comment are fine.
    const Result<TransformPipeline> parsed = parseTransforms(u'[' + text + QStringLiteral("\n]"));
    if (!parsed || parsed->steps.size() != 1)
        return std::nullopt;
    return parsed->steps.constFirst();
}

} // namespace

TransformPipeline enabledPipeline(const PipelineItems &items)
{
    TransformPipeline pipeline;
    for (const PipelineItem &item : items)
        if (item.enabled)
            pipeline.steps.append(item.step);
    return pipeline;
}

PipelineItems itemsFromPipeline(const TransformPipeline &pipeline)
{
    PipelineItems items;
    for (const TransformStep &step : pipeline.steps)
        items.append({step, true});
    return items;
}

PipelineItems withEnabledPipeline(const PipelineItems &items, const TransformPipeline &pipeline)
{
    // Each disabled step stays after as many enabled steps as it followed before.
    QList<QPair<int, PipelineItem>> disabled;
    int enabledBefore = 0;
    for (const PipelineItem &item : items) {
        if (item.enabled)
            ++enabledBefore;
        else
            disabled.append({enabledBefore, item});
    }
    PipelineItems out;
    qsizetype next = 0;
    for (int i = 0; i <= pipeline.steps.size(); ++i) {
        while (next < disabled.size()
               && (disabled[next].first <= i || i == pipeline.steps.size())) {
            out.append(disabled[next].second);
            ++next;
        }
        if (i < pipeline.steps.size())
            out.append({pipeline.steps[i], true});
    }
    return out;
}

QString pipelineItemsToSource(const PipelineItems &items)
{
    if (items.isEmpty())
        return QStringLiteral("transforms.Compose([])");
    QString out = QStringLiteral("transforms.Compose([\n");
    for (const PipelineItem &item : items) {
        out += item.enabled ? QStringLiteral("    ") : QStringLiteral("    # ");
        out += printedStep(item.step) + QStringLiteral(",\n");
    }
    return out + QStringLiteral("])");
}

Result<PipelineItems> pipelineItemsFromSource(const QString &source)
{
    const Result<TransformPipeline> parsed = parseTransforms(source);
    if (!parsed)
        return parsed.error();
    const QList<TransformStep> &enabled = parsed->steps;

    // Recover commented-out steps: put a marker step on the commented line, one line at a time;
    // when the pipeline then parses with one step more, the marker's index is the step's place
    // among the enabled ones (a marker, not the step itself: identical neighbours stay apart).
    const TransformStep marker{QStringLiteral("Pad"),
                               {{QString(), TransformValue::integer(-987654321)}}};
    const QString markerText = QStringLiteral("Pad(-987654321)");
    QStringList lines = source.split(u'\n');
    QList<QPair<int, TransformStep>> disabled; // (enabled steps before it, step), in line order
    for (qsizetype l = 0; l < lines.size(); ++l) {
        const QString trimmed = lines[l].trimmed();
        if (!trimmed.startsWith(u'#'))
            continue;
        const std::optional<TransformStep> step = commentedStep(trimmed.mid(1).trimmed());
        if (!step)
            continue;
        const QString indent = lines[l].left(lines[l].indexOf(u'#'));
        const QString original = lines[l];
        std::optional<int> place;
        // Either this line ends its step with a comma, or the previous step lacks one.
        for (const QString &variant :
             QStringList{indent + markerText + u',', indent + u',' + markerText}) {
            lines[l] = variant;
            const Result<TransformPipeline> with = parseTransforms(lines.join(u'\n'));
            if (!with || with->steps.size() != enabled.size() + 1)
                continue;
            const int at = int(with->steps.indexOf(marker));
            QList<TransformStep> without = with->steps;
            if (at >= 0)
                without.removeAt(at);
            if (at >= 0 && without == enabled) {
                place = at;
                break;
            }
        }
        lines[l] = original;
        if (place)
            disabled.append({*place, *step});
    }

    PipelineItems items;
    qsizetype next = 0;
    for (int i = 0; i <= enabled.size(); ++i) {
        while (next < disabled.size() && (disabled[next].first <= i || i == enabled.size()))
            items.append({disabled[next++].second, false});
        if (i < enabled.size())
            items.append({enabled[i], true});
    }
    return items;
}

QString stepArgumentsText(const TransformStep &step)
{
    const QString printed = printedStep(step);
    const qsizetype open = printed.indexOf(u'(');
    if (open < 0 || !printed.endsWith(u')'))
        return {};
    return printed.mid(open + 1, printed.size() - open - 2);
}

// ---- PipelineModel ---------------------------------------------------------------------------

PipelineModel::PipelineModel(QObject *parent)
    : QAbstractListModel(parent)
{ }

void PipelineModel::setItems(const PipelineItems &items)
{
    beginResetModel();
    m_items = items;
    m_notes.clear();
    m_problems.clear();
    endResetModel();
}

void PipelineModel::insertStep(int row, const TransformStep &step, bool enabled)
{
    row = std::clamp(row, 0, int(m_items.size()));
    beginInsertRows({}, row, row);
    m_items.insert(row, {step, enabled});
    if (row < m_problems.size())
        m_problems.insert(row, QString());
    endInsertRows();
    Q_EMIT itemsEdited();
}

void PipelineModel::removeStep(int row)
{
    if (removeRows(row, 1))
        Q_EMIT itemsEdited();
}

bool PipelineModel::moveStep(int from, int to)
{
    if (from < 0 || from >= m_items.size() || to < 0 || to >= m_items.size() || from == to)
        return false;
    // moveRows() takes the row before which the step goes, counted before the move.
    return moveRows({}, from, 1, {}, to > from ? to + 1 : to);
}

void PipelineModel::setStep(int row, const TransformStep &step)
{
    if (row < 0 || row >= m_items.size() || m_items[row].step == step)
        return;
    m_items[row].step = step;
    const QModelIndex changed = index(row);
    Q_EMIT dataChanged(changed, changed);
    Q_EMIT itemsEdited();
}

void PipelineModel::setStepEnabled(int row, bool enabled)
{
    if (row < 0 || row >= m_items.size() || m_items[row].enabled == enabled)
        return;
    m_items[row].enabled = enabled;
    const QModelIndex changed = index(row);
    Q_EMIT dataChanged(changed, changed);
    Q_EMIT itemsEdited();
}

int PipelineModel::rowOfEnabledStep(int index) const
{
    for (int row = 0; row < m_items.size(); ++row) {
        if (!m_items[row].enabled)
            continue;
        if (index-- == 0)
            return row;
    }
    return -1;
}

void PipelineModel::setRowNotes(const QList<RowNote> &notes)
{
    QHash<int, QList<RowNote>> byRow;
    for (const RowNote &note : notes)
        if (note.row >= 0 && note.row < m_items.size())
            byRow[note.row].append(note);
    if (byRow.isEmpty() && m_notes.isEmpty())
        return;
    m_notes = byRow;
    if (!m_items.isEmpty())
        Q_EMIT dataChanged(index(0), index(int(m_items.size()) - 1),
                           {Qt::DecorationRole, Qt::ToolTipRole, SeverityRole, NoteRole});
}

void PipelineModel::setRowProblems(const QStringList &problems)
{
    if (problems == m_problems)
        return;
    m_problems = problems;
    if (!m_items.isEmpty())
        Q_EMIT dataChanged(index(0), index(int(m_items.size()) - 1),
                           {Qt::DecorationRole, Qt::ToolTipRole, ProblemRole});
}

int PipelineModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_items.size());
}

QVariant PipelineModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const PipelineItem &item = m_items.at(index.row());
    const QString problem = index.row() < m_problems.size() ? m_problems[index.row()] : QString();
    const QList<RowNote> notes = m_notes.value(index.row());
    int severity = -1;
    QStringList messages;
    for (const RowNote &note : notes) {
        severity = std::max(severity, note.severity);
        messages.append(note.message);
    }
    if (!problem.isEmpty())
        severity = 2;

    switch (role) {
    case Qt::DisplayRole:
        return QString(item.step.name + u'(' + stepArgumentsText(item.step) + u')');
    case Qt::EditRole:
    case NameRole:
        return item.step.name;
    case ArgumentsRole:
        return stepArgumentsText(item.step);
    case Qt::CheckStateRole:
        return item.enabled ? Qt::Checked : Qt::Unchecked;
    case EnabledRole:
        return item.enabled;
    case RandomRole:
        return isRandomTransform(item.step.name);
    case ProblemRole:
        return problem;
    case SeverityRole:
        return severity;
    case NoteRole:
        return messages.join(u'\n');
    case Qt::DecorationRole: {
        if (severity < 0)
            return {};
        const QStyle::StandardPixmap pixmap = severity >= 2 ? QStyle::SP_MessageBoxCritical
            : severity == 1                                 ? QStyle::SP_MessageBoxWarning
                                                            : QStyle::SP_MessageBoxInformation;
        return QApplication::style()->standardIcon(pixmap);
    }
    case Qt::ToolTipRole: {
        QStringList parts{
            QStringLiteral("<b>%1</b> — %2")
                .arg(item.step.name, transformDescription(item.step.name).toHtmlEscaped())};
        if (!item.enabled)
            parts.append(
                QStringLiteral("<i>Disabled: kept as a comment in the code, not run.</i>"));
        if (!problem.isEmpty())
            parts.append(QStringLiteral("<span style='color:#b00020'>%1</span>")
                             .arg(problem.toHtmlEscaped()));
        for (const QString &message : std::as_const(messages))
            parts.append(message.toHtmlEscaped());
        return parts.join(QStringLiteral("<br>"));
    }
    case Qt::ForegroundRole:
        if (!item.enabled)
            return QApplication::palette().brush(QPalette::Disabled, QPalette::Text);
        return {};
    case Qt::FontRole:
        if (!item.enabled) {
            QFont font;
            font.setItalic(true);
            return font;
        }
        return {};
    default:
        return {};
    }
}

bool PipelineModel::setData(const QModelIndex &index, const QVariant &value, int role)
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return false;
    if (role == Qt::CheckStateRole) {
        setStepEnabled(index.row(), value.toInt() == Qt::Checked);
        return true;
    }
    if (role == EnabledRole) {
        setStepEnabled(index.row(), value.toBool());
        return true;
    }
    return false;
}

Qt::ItemFlags PipelineModel::flags(const QModelIndex &index) const
{
    if (!index.isValid())
        return Qt::ItemIsDropEnabled; // drops go between rows, never onto a step
    return Qt::ItemIsSelectable | Qt::ItemIsEnabled | Qt::ItemIsUserCheckable
        | Qt::ItemIsDragEnabled | Qt::ItemNeverHasChildren;
}

QHash<int, QByteArray> PipelineModel::roleNames() const
{
    QHash<int, QByteArray> names = QAbstractListModel::roleNames();
    names.insert(NameRole, "name");
    names.insert(ArgumentsRole, "arguments");
    names.insert(EnabledRole, "enabled");
    names.insert(RandomRole, "random");
    names.insert(ProblemRole, "problem");
    names.insert(SeverityRole, "severity");
    names.insert(NoteRole, "note");
    return names;
}

bool PipelineModel::moveRows(const QModelIndex &sourceParent, int sourceRow, int count,
                             const QModelIndex &destinationParent, int destinationChild)
{
    const int size = int(m_items.size());
    if (sourceParent.isValid() || destinationParent.isValid() || count <= 0 || sourceRow < 0
        || sourceRow + count > size || destinationChild < 0 || destinationChild > size
        || (destinationChild >= sourceRow && destinationChild <= sourceRow + count))
        return false;
    if (!beginMoveRows({}, sourceRow, sourceRow + count - 1, {}, destinationChild))
        return false;
    const PipelineItems moving = m_items.mid(sourceRow, count);
    m_items.remove(sourceRow, count);
    const int insertAt = destinationChild > sourceRow ? destinationChild - count : destinationChild;
    for (int i = 0; i < count; ++i)
        m_items.insert(insertAt + i, moving[i]);
    // Markers follow the steps until the next review.
    m_notes.clear();
    m_problems.clear();
    endMoveRows();
    Q_EMIT itemsEdited();
    return true;
}

bool PipelineModel::removeRows(int row, int count, const QModelIndex &parent)
{
    if (parent.isValid() || row < 0 || count <= 0 || row + count > m_items.size())
        return false;
    beginRemoveRows({}, row, row + count - 1);
    m_items.remove(row, count);
    if (row < m_problems.size())
        m_problems.remove(row, std::min<qsizetype>(count, m_problems.size() - row));
    m_notes.clear();
    endRemoveRows();
    return true;
}

Qt::DropActions PipelineModel::supportedDropActions() const
{
    return Qt::MoveAction;
}

QStringList PipelineModel::mimeTypes() const
{
    return {kRowsMime};
}

QMimeData *PipelineModel::mimeData(const QModelIndexList &indexes) const
{
    QList<int> rows;
    for (const QModelIndex &index : indexes)
        if (index.isValid() && !rows.contains(index.row()))
            rows.append(index.row());
    std::sort(rows.begin(), rows.end());
    QByteArray bytes;
    QDataStream stream(&bytes, QIODevice::WriteOnly);
    stream << rows;
    auto *mime = new QMimeData;
    mime->setData(kRowsMime, bytes);
    // Other applications get the steps as Python.
    QStringList text;
    for (int row : std::as_const(rows))
        text.append(printedStep(m_items[row].step) + u',');
    mime->setText(text.join(u'\n'));
    return mime;
}

bool PipelineModel::canDropMimeData(const QMimeData *data, Qt::DropAction action, int row,
                                    int column, const QModelIndex &parent) const
{
    Q_UNUSED(row);
    Q_UNUSED(column);
    return action == Qt::MoveAction && !parent.isValid() && data && data->hasFormat(kRowsMime);
}

bool PipelineModel::dropMimeData(const QMimeData *data, Qt::DropAction action, int row, int column,
                                 const QModelIndex &parent)
{
    if (!canDropMimeData(data, action, row, column, parent))
        return false;
    QList<int> rows;
    QDataStream stream(data->data(kRowsMime));
    stream >> rows;
    if (rows.size() != 1)
        return false; // one step at a time: the list is single-selection
    const int from = rows.constFirst();
    const int before = row < 0 ? int(m_items.size()) : row;
    if (from < 0 || from >= m_items.size() || before == from || before == from + 1)
        return false;
    return moveRows({}, from, 1, {}, before);
}

} // namespace ifs
