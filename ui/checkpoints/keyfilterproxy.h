#pragma once

#include <QSortFilterProxyModel>

namespace ifs {

/// Keeps a row of a CheckpointTreeModel when its dotted key contains the filter text (taken as
/// plain text, not as a pattern), and (with recursive filtering) its ancestors.
class KeyFilterProxy : public QSortFilterProxyModel
{
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;

protected:
    bool filterAcceptsRow(int row, const QModelIndex &parent) const override;
};

} // namespace ifs
