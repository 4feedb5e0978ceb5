#include "datasets/classtablemodel.h"

#include "base/filenames.h"

#include <QApplication>
#include <QBrush>
#include <QColor>
#include <QLocale>
#include <QStyle>

namespace ifs {

ClassTableModel::ClassTableModel(QObject *parent)
    : QAbstractTableModel(parent)
{ }

void ClassTableModel::setClasses(const QStringList &classes)
{
    beginResetModel();
    m_classes = classes;
    m_counts.assign(size_t(classes.size()), 0);
    m_total = 0;
    m_warnings.clear();
    endResetModel();
}

void ClassTableModel::setCounts(const std::vector<int64_t> &counts)
{
    if (counts.size() != m_counts.size())
        return;
    m_counts = counts;
    m_total = 0;
    for (int64_t n : m_counts)
        m_total += n;
    if (!m_classes.isEmpty())
        Q_EMIT dataChanged(index(0, CountColumn), index(rowCount() - 1, ShareColumn));
}

void ClassTableModel::setClassWarnings(const QHash<QString, QString> &warnings)
{
    m_warnings = warnings;
    if (!m_classes.isEmpty())
        Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
}

void ClassTableModel::clear()
{
    setClasses({});
}

int ClassTableModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_classes.size());
}

int ClassTableModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ClassTableModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const int row = index.row();
    const int64_t count = m_counts[size_t(row)];
    const double share = m_total > 0 ? double(count) / double(m_total) : 0.0;
    const QString &name = m_classes[row];

    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case IndexColumn:
            return row;
        case NameColumn: // undecodable bytes of a name show as U+FFFD (base/filenames.h)
            return displayFileName(name);
        case CountColumn:
            return QLocale().toString(qlonglong(count));
        case ShareColumn:
            return QStringLiteral("%1%").arg(100.0 * share, 0, 'f', 1);
        }
        break;
    case SortRole:
        switch (index.column()) {
        case IndexColumn:
            return row;
        case NameColumn:
            return name;
        case CountColumn:
        case ShareColumn:
            return qlonglong(count);
        }
        break;
    case ClassIndexRole:
        return row;
    case WarningRole:
        return m_warnings.value(name);
    case Qt::ToolTipRole:
        if (m_warnings.contains(name))
            return displayFileName(m_warnings.value(name));
        return QStringLiteral("class_to_idx[\"%1\"] = %2").arg(displayFileName(name)).arg(row);
    case Qt::DecorationRole:
        if (index.column() == NameColumn && m_warnings.contains(name))
            return QApplication::style()->standardIcon(QStyle::SP_MessageBoxWarning);
        break;
    case Qt::ForegroundRole:
        if (count == 0 && index.column() == CountColumn)
            return QBrush(QColor(0xc0, 0x39, 0x2b));
        break;
    case Qt::TextAlignmentRole:
        if (index.column() != NameColumn)
            return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
        break;
    }
    return {};
}

QVariant ClassTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case IndexColumn:
            return tr("Index");
        case NameColumn:
            return tr("Class");
        case CountColumn:
            return tr("Images");
        case ShareColumn:
            return tr("Share");
        }
    }
    if (role == Qt::ToolTipRole && section == IndexColumn)
        return tr("The class index torchvision assigns (class_to_idx): classes sorted by name");
    return {};
}

} // namespace ifs
