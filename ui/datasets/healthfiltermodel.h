#pragma once

#include "dataset/healthcheck.h"

#include <QSortFilterProxyModel>

#include <optional>

namespace ifs {

/// Filters a HealthReportModel by severity and kind; sorts by HealthReportModel::SortRole.
class HealthFilterModel : public QSortFilterProxyModel
{
    Q_OBJECT

public:
    explicit HealthFilterModel(QObject *parent = nullptr);

    /// Only findings of this severity; nullopt for all.
    void setSeverityFilter(std::optional<HealthFinding::Severity> severity);
    std::optional<HealthFinding::Severity> severityFilter() const { return m_severity; }
    /// Only findings of this kind; nullopt for all.
    void setKindFilter(std::optional<HealthFinding::Kind> kind);
    std::optional<HealthFinding::Kind> kindFilter() const { return m_kind; }

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const override;

private:
    std::optional<HealthFinding::Severity> m_severity;
    std::optional<HealthFinding::Kind> m_kind;
};

} // namespace ifs
