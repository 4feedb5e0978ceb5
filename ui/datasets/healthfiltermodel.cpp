#include "datasets/healthfiltermodel.h"

#include "datasets/healthreportmodel.h"

namespace ifs {

namespace {
using Kind = HealthFinding::Kind;
using Severity = HealthFinding::Severity;
} // namespace

HealthFilterModel::HealthFilterModel(QObject *parent)
    : QSortFilterProxyModel(parent)
{
    setSortRole(HealthReportModel::SortRole);
    setSortCaseSensitivity(Qt::CaseInsensitive);
}

void HealthFilterModel::setSeverityFilter(std::optional<Severity> severity)
{
    if (m_severity == severity)
        return;
    m_severity = severity;
    invalidateRowsFilter();
}

void HealthFilterModel::setKindFilter(std::optional<Kind> kind)
{
    if (m_kind == kind)
        return;
    m_kind = kind;
    invalidateRowsFilter();
}

bool HealthFilterModel::filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const
{
    const QModelIndex index = sourceModel()->index(sourceRow, 0, sourceParent);
    if (m_severity && index.data(HealthReportModel::SeverityRole).toInt() != int(*m_severity)) {
        return false;
    }
    if (m_kind && index.data(HealthReportModel::KindRole).toInt() != int(*m_kind))
        return false;
    return true;
}

} // namespace ifs
