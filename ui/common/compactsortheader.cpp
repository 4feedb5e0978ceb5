#include "common/compactsortheader.h"

#include <QStyle>
#include <QStyleOptionHeader>

namespace ifs {

CompactSortHeader::CompactSortHeader(Qt::Orientation orientation, QWidget *parent)
    : QHeaderView(orientation, parent)
{
    setSectionsClickable(true);
    setHighlightSections(true);
}

QSize CompactSortHeader::sectionSizeFromContents(int logicalIndex) const
{
    QSize size = QHeaderView::sectionSizeFromContents(logicalIndex);
    if (!isSortIndicatorShown() || logicalIndex == sortIndicatorSection())
        return size;
    // Take back what QHeaderView added for the arrow: the section's height (width when
    // vertical) and the header margin. Qt resizes ResizeToContents sections when the sorted
    // section changes, so the arrow's room moves with it.
    QStyleOptionHeader option;
    initStyleOption(&option);
    option.section = logicalIndex;
    const int margin = style()->pixelMetric(QStyle::PM_HeaderMargin, &option, this);
    if (orientation() == Qt::Horizontal)
        size.rwidth() -= size.height() + margin;
    else
        size.rheight() -= size.width() + margin;
    return size;
}

} // namespace ifs
