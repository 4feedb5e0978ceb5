#include "datasets/healthreportmodel.h"

#include "base/filenames.h"

#include <QColor>
#include <QFont>
#include <QGuiApplication>
#include <QPainter>
#include <QPainterPath>
#include <QPalette>
#include <QPixmap>

namespace ifs {

namespace {

using Kind = HealthFinding::Kind;
using Severity = HealthFinding::Severity;

// Drawn where the icon theme has no dialog-* icons (offscreen tests, bare desktops): a red disc
// with "!", an amber triangle with "!", a blue disc with "i".
QPixmap paintSeverityPixmap(Severity severity, int size)
{
    QPixmap pixmap(size, size);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(Qt::NoPen);

    const qreal s = size;
    const QRectF disc(s * 0.06, s * 0.06, s * 0.88, s * 0.88);
    QColor glyph = Qt::white;
    switch (severity) {
    case Severity::Error:
        painter.setBrush(QColor(0xda, 0x44, 0x53));
        painter.drawEllipse(disc);
        break;
    case Severity::Warning: {
        QPainterPath triangle;
        triangle.moveTo(s * 0.5, s * 0.06);
        triangle.lineTo(s * 0.96, s * 0.9);
        triangle.lineTo(s * 0.04, s * 0.9);
        triangle.closeSubpath();
        painter.setBrush(QColor(0xf6, 0x74, 0x00));
        painter.drawPath(triangle);
        glyph = QColor(0x23, 0x26, 0x29);
        break;
    }
    case Severity::Info:
        painter.setBrush(QColor(0x3d, 0xae, 0xe9));
        painter.drawEllipse(disc);
        break;
    }

    painter.setBrush(glyph);
    const qreal barWidth = qMax(1.5, s * 0.13);
    const qreal x = (s - barWidth) / 2;
    if (severity == Severity::Info) {
        painter.drawEllipse(QRectF(x, s * 0.2, barWidth, barWidth));
        painter.drawRoundedRect(QRectF(x, s * 0.4, barWidth, s * 0.38), barWidth / 3, barWidth / 3);
    } else {
        const qreal top = severity == Severity::Warning ? s * 0.32 : s * 0.2;
        const qreal bottom = severity == Severity::Warning ? s * 0.64 : s * 0.58;
        painter.drawRoundedRect(QRectF(x, top, barWidth, bottom - top), barWidth / 3, barWidth / 3);
        painter.drawEllipse(QRectF(x, bottom + barWidth * 0.55, barWidth, barWidth));
    }
    return pixmap;
}

QIcon makeSeverityIcon(Severity severity)
{
    static constexpr const char16_t *kThemeNames[]
        = {u"dialog-information", u"dialog-warning", u"dialog-error"};
    const QString name = QString::fromUtf16(kThemeNames[int(severity)]);
    if (QIcon::hasThemeIcon(name))
        return QIcon::fromTheme(name);
    QIcon icon;
    for (int size : {16, 22, 24, 32, 48})
        icon.addPixmap(paintSeverityPixmap(severity, size));
    return icon;
}

} // namespace

HealthReportModel::HealthReportModel(QObject *parent)
    : QAbstractTableModel(parent)
{ }

HealthReportModel::~HealthReportModel() = default;

void HealthReportModel::setReport(const HealthReport &report)
{
    const bool hadChecks = !m_checked.isEmpty();
    beginResetModel();
    m_report = report;
    m_checked.clear();
    m_quarantined.clear();
    endResetModel();
    if (hadChecks)
        Q_EMIT checkedChanged();
}

void HealthReportModel::clear()
{
    setReport({});
}

const HealthFinding &HealthReportModel::finding(int row) const
{
    Q_ASSERT(row >= 0 && row < m_report.findings.size());
    return m_report.findings.at(row);
}

QStringList HealthReportModel::checkedPaths() const
{
    QStringList paths;
    QSet<QString> seen;
    for (const HealthFinding &finding : m_report.findings) {
        const QString &path = finding.absolutePath;
        if (m_checked.contains(path) && !m_quarantined.contains(path) && !seen.contains(path)) {
            seen.insert(path);
            paths.append(path);
        }
    }
    return paths;
}

int HealthReportModel::checkedCount() const
{
    return int(m_checked.size());
}

void HealthReportModel::setChecked(int row, bool checked)
{
    if (row < 0 || row >= rowCount())
        return;
    const QString &path = m_report.findings.at(row).absolutePath;
    if (m_quarantined.contains(path) || m_checked.contains(path) == checked)
        return;
    if (checked)
        m_checked.insert(path);
    else
        m_checked.remove(path);
    emitRowsChanged({path}, {Qt::CheckStateRole});
    Q_EMIT checkedChanged();
}

int HealthReportModel::checkAllErrors()
{
    QSet<QString> errors;
    for (const HealthFinding &finding : m_report.findings) {
        if (finding.severity == Severity::Error && !m_quarantined.contains(finding.absolutePath))
            errors.insert(finding.absolutePath);
    }
    if (errors != m_checked) {
        const QSet<QString> changed = (errors - m_checked) + (m_checked - errors);
        m_checked = errors;
        emitRowsChanged(changed, {Qt::CheckStateRole});
        Q_EMIT checkedChanged();
    }
    return int(errors.size());
}

void HealthReportModel::uncheckAll()
{
    if (m_checked.isEmpty())
        return;
    const QSet<QString> changed = m_checked;
    m_checked.clear();
    emitRowsChanged(changed, {Qt::CheckStateRole});
    Q_EMIT checkedChanged();
}

void HealthReportModel::markQuarantined(const QStringList &absolutePaths)
{
    QSet<QString> changed;
    bool uncheckedAny = false;
    for (const QString &path : absolutePaths) {
        if (m_quarantined.contains(path))
            continue;
        m_quarantined.insert(path);
        uncheckedAny |= m_checked.remove(path);
        changed.insert(path);
    }
    if (changed.isEmpty())
        return;
    emitRowsChanged(changed, {});
    if (uncheckedAny)
        Q_EMIT checkedChanged();
}

void HealthReportModel::markRestored(const QStringList &absolutePaths)
{
    QSet<QString> changed;
    for (const QString &path : absolutePaths) {
        if (m_quarantined.remove(path))
            changed.insert(path);
    }
    if (!changed.isEmpty())
        emitRowsChanged(changed, {});
}

bool HealthReportModel::isQuarantined(const QString &absolutePath) const
{
    return m_quarantined.contains(absolutePath);
}

int HealthReportModel::failingFileCount() const
{
    QSet<QString> files;
    for (const HealthFinding &finding : m_report.findings) {
        // Leakage is an error of the dataset, not one torchvision's loader fails on.
        if (finding.severity == Severity::Error && finding.kind != Kind::NearDuplicate
            && !m_quarantined.contains(finding.absolutePath))
            files.insert(finding.absolutePath);
    }
    return int(files.size());
}

QString HealthReportModel::kindName(Kind kind)
{
    switch (kind) {
    case Kind::ZeroByte:
        return tr("Empty file");
    case Kind::Unreadable:
        return tr("Unreadable");
    case Kind::Truncated:
        return tr("Truncated");
    case Kind::HugeDimensions:
        return tr("Huge");
    case Kind::TinyDimensions:
        return tr("Tiny");
    case Kind::UnusualMode:
        return tr("Unusual mode");
    case Kind::WrongExtension:
        return tr("Wrong extension");
    case Kind::Duplicate:
        return tr("Duplicate");
    case Kind::NearDuplicate:
        return tr("Near-duplicate");
    }
    return {};
}

QString HealthReportModel::kindKey(Kind kind)
{
    return QString::fromLatin1(healthKindKey(kind));
}

QString HealthReportModel::severityName(Severity severity)
{
    switch (severity) {
    case Severity::Error:
        return tr("Error");
    case Severity::Warning:
        return tr("Warning");
    case Severity::Info:
        return tr("Info");
    }
    return {};
}

QString HealthReportModel::severityKey(Severity severity)
{
    return QString::fromLatin1(healthSeverityKey(severity));
}

QString HealthReportModel::detailsText(const HealthFinding &finding)
{
    if (finding.kind == Kind::Duplicate && !finding.duplicateOf.isEmpty())
        return tr("Same bytes as %1").arg(finding.duplicateOf);
    if (finding.kind == Kind::NearDuplicate && !finding.duplicateOf.isEmpty())
        return finding.hashDistance == 1
            ? tr("Looks like %1 (1 bit apart)").arg(finding.duplicateOf)
            : tr("Looks like %1 (%2 bits apart)")
                  .arg(finding.duplicateOf)
                  .arg(finding.hashDistance);
    return finding.message;
}

QIcon HealthReportModel::severityIcon(Severity severity) const
{
    QIcon &icon = m_icons[int(severity)];
    if (icon.isNull())
        icon = makeSeverityIcon(severity);
    return icon;
}

int HealthReportModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_report.findings.size());
}

int HealthReportModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant HealthReportModel::data(const QModelIndex &index, int role) const
{
    if (!isRow(index))
        return {};
    const HealthFinding &finding = m_report.findings.at(index.row());
    const bool quarantined = m_quarantined.contains(finding.absolutePath);

    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case SeverityColumn:
            return severityName(finding.severity);
        case ProblemColumn:
            return kindName(finding.kind);
        case SplitColumn:
            return finding.split;
        case FileColumn: // undecodable bytes of a name show as U+FFFD (base/filenames.h)
            return displayFileName(finding.relativePath);
        case DetailsColumn:
            return quarantined ? tr("Moved to quarantine") : displayFileName(detailsText(finding));
        }
        return {};
    case Qt::ToolTipRole:
        switch (index.column()) {
        case FileColumn:
            return displayFileName(finding.absolutePath);
        case DetailsColumn:
            if (quarantined)
                return tr("Moved to quarantine. %1").arg(displayFileName(finding.message));
            return displayFileName(finding.message);
        default:
            return {};
        }
    case Qt::DecorationRole:
        if (index.column() == SeverityColumn)
            return severityIcon(finding.severity);
        return {};
    case Qt::CheckStateRole:
        if (index.column() == SeverityColumn)
            return m_checked.contains(finding.absolutePath) ? Qt::Checked : Qt::Unchecked;
        return {};
    case Qt::ForegroundRole:
        if (quarantined)
            return QGuiApplication::palette().brush(QPalette::Disabled, QPalette::Text);
        return {};
    case Qt::FontRole:
        if (quarantined && index.column() == DetailsColumn) {
            QFont font;
            font.setItalic(true);
            return font;
        }
        return {};
    case KindRole:
        return int(finding.kind);
    case SeverityRole:
        return int(finding.severity);
    case AbsolutePathRole:
        return finding.absolutePath;
    case RelativePathRole:
        return finding.relativePath;
    case QuarantinedRole:
        return quarantined;
    case SortRole:
        switch (index.column()) {
        case SeverityColumn:
            return int(finding.severity); // Error > Warning > Info
        case ProblemColumn:
            return kindName(finding.kind);
        case SplitColumn:
            return finding.split;
        case FileColumn:
            return finding.relativePath;
        case DetailsColumn:
            return detailsText(finding);
        }
        return {};
    default:
        return {};
    }
}

bool HealthReportModel::setData(const QModelIndex &index, const QVariant &value, int role)
{
    if (role != Qt::CheckStateRole || index.column() != SeverityColumn || !isRow(index))
        return false;
    const QString &path = m_report.findings.at(index.row()).absolutePath;
    if (m_quarantined.contains(path))
        return false;
    setChecked(index.row(), value.toInt() == Qt::Checked);
    return true;
}

QVariant HealthReportModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case SeverityColumn:
        return tr("Severity");
    case ProblemColumn:
        return tr("Problem");
    case SplitColumn:
        return tr("Split");
    case FileColumn:
        return tr("File");
    case DetailsColumn:
        return tr("Details");
    }
    return {};
}

Qt::ItemFlags HealthReportModel::flags(const QModelIndex &index) const
{
    if (!isRow(index))
        return Qt::NoItemFlags;
    Qt::ItemFlags result = Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemNeverHasChildren;
    if (index.column() == SeverityColumn
        && !m_quarantined.contains(m_report.findings.at(index.row()).absolutePath)) {
        result |= Qt::ItemIsUserCheckable;
    }
    return result;
}

bool HealthReportModel::isRow(const QModelIndex &index) const
{
    // Views and the model tester ask about invalid indexes too: not an error.
    return index.isValid() && index.model() == this && !index.parent().isValid()
        && index.row() < rowCount() && index.column() < ColumnCount;
}

void HealthReportModel::emitRowsChanged(const QSet<QString> &paths, const QList<int> &roles)
{
    if (paths.isEmpty())
        return;
    // One signal per run of adjacent changed rows keeps views cheap for large reports.
    const int lastColumn
        = roles == QList<int>{Qt::CheckStateRole} ? SeverityColumn : ColumnCount - 1;
    int first = -1;
    const int rows = rowCount();
    for (int row = 0; row <= rows; ++row) {
        const bool hit = row < rows && paths.contains(m_report.findings.at(row).absolutePath);
        if (hit && first < 0) {
            first = row;
        } else if (!hit && first >= 0) {
            Q_EMIT dataChanged(index(first, 0), index(row - 1, lastColumn), roles);
            first = -1;
        }
    }
}

} // namespace ifs
