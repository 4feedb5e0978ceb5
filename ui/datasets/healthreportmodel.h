#pragma once

#include "dataset/healthcheck.h"

#include <QAbstractTableModel>
#include <QIcon>
#include <QSet>
#include <QString>
#include <QStringList>

namespace ifs {

/// The findings of a health check as a table, one row per finding.
///
/// Rows can be ticked (column 0) to pick the files to quarantine. Ticks and the quarantined state
/// belong to the file, not the row: a file with two findings is ticked, moved and restored as one.
class HealthReportModel : public QAbstractTableModel
{
    Q_OBJECT

public:
    enum Column {
        SeverityColumn,
        ProblemColumn,
        SplitColumn,
        FileColumn,
        DetailsColumn,
        ColumnCount
    };
    Q_ENUM(Column)

    enum Role {
        KindRole = Qt::UserRole + 1, ///< int: a HealthFinding::Kind
        SeverityRole, ///< int: a HealthFinding::Severity
        AbsolutePathRole, ///< QString
        RelativePathRole, ///< QString: relative to the split root
        QuarantinedRole, ///< bool: the file was moved to quarantine
        SortRole, ///< what the column sorts by (Error > Warning > Info)
    };
    Q_ENUM(Role)

    explicit HealthReportModel(QObject *parent = nullptr);
    ~HealthReportModel() override;

    /// Shows `report`; forgets ticks and quarantined marks.
    void setReport(const HealthReport &report);
    void clear();
    const HealthReport &report() const { return m_report; }

    /// The finding shown at source `row` (0 <= row < rowCount()).
    const HealthFinding &finding(int row) const;
    int findingCount() const { return int(m_report.findings.size()); }

    /// Ticked files that are still in the dataset, absolute, each once, in report order.
    QStringList checkedPaths() const;
    int checkedCount() const;
    void setChecked(int row, bool checked);
    /// Ticks every file that has an error (torchvision would fail on it) and unticks the rest.
    /// Returns the number of files ticked.
    int checkAllErrors();
    void uncheckAll();

    /// Shows the files as moved to quarantine (greyed, "Moved to quarantine") and unticks them.
    void markQuarantined(const QStringList &absolutePaths);
    /// Undoes markQuarantined() for these files (after an undo of the move).
    void markRestored(const QStringList &absolutePaths);
    bool isQuarantined(const QString &absolutePath) const;
    int quarantinedCount() const { return int(m_quarantined.size()); }

    /// Distinct files with at least one Error finding that are still in the dataset, leakage
    /// (near-duplicates across splits) left out: torchvision loads those.
    int failingFileCount() const;

    /// "Truncated", "Empty file", "Duplicate", ...
    static QString kindName(HealthFinding::Kind kind);
    /// "truncated", "zero_byte", "duplicate", ...: the core's stable keys, as the CLI prints them.
    static QString kindKey(HealthFinding::Kind kind);
    static QString severityName(HealthFinding::Severity severity);
    static QString severityKey(HealthFinding::Severity severity);
    /// What the Details column shows for a finding (the message, or "Same bytes as …").
    static QString detailsText(const HealthFinding &finding);
    /// The theme icon, or a painted one where the theme has none.
    QIcon severityIcon(HealthFinding::Severity severity) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex &index, const QVariant &value, int role = Qt::EditRole) override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex &index) const override;

Q_SIGNALS:
    /// The set of ticked files changed.
    void checkedChanged();

private:
    bool isRow(const QModelIndex &index) const;
    void emitRowsChanged(const QSet<QString> &paths, const QList<int> &roles);

    HealthReport m_report;
    QSet<QString> m_checked; // absolute paths
    QSet<QString> m_quarantined; // absolute paths
    mutable QIcon m_icons[3]; // by Severity, made on first use (needs a QGuiApplication)
};

} // namespace ifs
