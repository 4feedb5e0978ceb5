#include "training/classmetricsmodel.h"

#include <QLocale>

#include <algorithm>

namespace ifs {

void ClassMetricsModel::setMetrics(const QStringList &classes, const QList<ClassMetrics> &metrics)
{
    beginResetModel();
    m_classes = classes;
    m_metrics = metrics;
    endResetModel();
}

int ClassMetricsModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(std::min(m_classes.size(), m_metrics.size()));
}

int ClassMetricsModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ClassMetricsModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const ClassMetrics &m = m_metrics[index.row()];
    if (role == Qt::TextAlignmentRole)
        return index.column() == ClassColumn ? QVariant(Qt::AlignLeft | Qt::AlignVCenter)
                                             : QVariant(Qt::AlignRight | Qt::AlignVCenter);
    if (role != Qt::DisplayRole && role != Qt::EditRole)
        return {};
    const bool display = role == Qt::DisplayRole;
    switch (index.column()) {
    case ClassColumn:
        return m_classes[index.row()];
    case PrecisionColumn:
        return display ? QVariant(QString::number(m.precision, 'f', 3)) : QVariant(m.precision);
    case RecallColumn:
        return display ? QVariant(QString::number(m.recall, 'f', 3)) : QVariant(m.recall);
    case F1Column:
        return display ? QVariant(QString::number(m.f1, 'f', 3)) : QVariant(m.f1);
    case SupportColumn:
        return display ? QVariant(QLocale().toString(m.support)) : QVariant(m.support);
    case PredictedColumn:
        return display ? QVariant(QLocale().toString(m.predictedCount))
                       : QVariant(m.predictedCount);
    default:
        return {};
    }
}

QVariant ClassMetricsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return QAbstractTableModel::headerData(section, orientation, role);
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case PrecisionColumn:
            return tr("Of the images predicted as this class, the share right");
        case RecallColumn:
            return tr("Of the images of this class, the share found");
        case F1Column:
            return tr("Harmonic mean of precision and recall");
        case SupportColumn:
            return tr("Images of this class evaluated");
        case PredictedColumn:
            return tr("Images predicted as this class");
        default:
            return {};
        }
    }
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case ClassColumn:
        return tr("Class");
    case PrecisionColumn:
        return tr("Precision");
    case RecallColumn:
        return tr("Recall");
    case F1Column:
        return tr("F1");
    case SupportColumn:
        return tr("Support");
    case PredictedColumn:
        return tr("Predicted");
    default:
        return {};
    }
}

} // namespace ifs
