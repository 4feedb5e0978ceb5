#include "checkpoints/keyfilterproxy.h"

#include "checkpoints/checkpointtreemodel.h"

namespace ifs {

bool KeyFilterProxy::filterAcceptsRow(int row, const QModelIndex &parent) const
{
    const QString needle = filterRegularExpression().pattern();
    if (needle.isEmpty())
        return true;
    const QModelIndex index = sourceModel()->index(row, 0, parent);
    return index.data(CheckpointTreeModel::FullKeyRole)
        .toString()
        .contains(needle, Qt::CaseInsensitive);
}

} // namespace ifs
