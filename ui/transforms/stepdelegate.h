#pragma once

#include <QStyledItemDelegate>

namespace ifs {

/// Paints a step as "2.  RandomResizedCrop  224, scale=(0.5, 1.0)" with its check box, a "random"
/// tag and the marker of its worst finding. Disabled steps are unnumbered: the engine's error
/// messages ("Step 2, ...") count the steps that run.
class StepDelegate : public QStyledItemDelegate
{
public:
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override;
    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const override;
};

} // namespace ifs
