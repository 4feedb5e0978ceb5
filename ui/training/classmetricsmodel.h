#pragma once

#include "training/evaluation.h"

#include <QAbstractTableModel>
#include <QList>
#include <QStringList>

namespace ifs {

/// Per-class precision, recall, F1, support and predicted count (sort through a proxy: the
/// numbers are in Qt::EditRole as numbers).
class ClassMetricsModel : public QAbstractTableModel
{
    Q_OBJECT

public:
    enum Column {
        ClassColumn,
        PrecisionColumn,
        RecallColumn,
        F1Column,
        SupportColumn,
        PredictedColumn,
        ColumnCount
    };

    using QAbstractTableModel::QAbstractTableModel;
    void setMetrics(const QStringList &classes, const QList<ClassMetrics> &metrics);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    QStringList m_classes;
    QList<ClassMetrics> m_metrics;
};

} // namespace ifs
