#pragma once

#include <QAbstractTableModel>
#include <QStringList>

#include <cstdint>
#include <vector>

namespace ifs {

/// The classes of one scanned folder: index, name, image count and share. Fills in while a scan
/// streams: setClasses() first (counts 0), then setCounts() as they grow.
class ClassTableModel : public QAbstractTableModel
{
    Q_OBJECT

public:
    enum Column { IndexColumn, NameColumn, CountColumn, ShareColumn, ColumnCount };
    enum Role { SortRole = Qt::UserRole + 1, ClassIndexRole, WarningRole };

    explicit ClassTableModel(QObject *parent = nullptr);

    void setClasses(const QStringList &classes);
    void setCounts(const std::vector<int64_t> &counts);
    /// Classes to mark (hidden, empty, outside the other split...) with a tooltip each.
    void setClassWarnings(const QHash<QString, QString> &warnings);
    void clear();

    QStringList classes() const { return m_classes; }
    int64_t total() const { return m_total; }

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    QStringList m_classes;
    std::vector<int64_t> m_counts;
    QHash<QString, QString> m_warnings;
    int64_t m_total = 0;
};

} // namespace ifs
