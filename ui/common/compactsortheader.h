#pragma once

#include <QHeaderView>

namespace ifs {

/// A header view for sortable tables whose columns size to their contents: QHeaderView reserves
/// room for the sort arrow in every section, so a column of short numbers under a short label
/// ("Share", "10.0%") is as wide again as it needs; here only the section that shows the arrow
/// reserves it, and the width saved goes to the stretched column (class names).
class CompactSortHeader : public QHeaderView
{
    Q_OBJECT

public:
    /// Clickable and highlighting like the header a QTableView makes for itself.
    explicit CompactSortHeader(Qt::Orientation orientation, QWidget *parent = nullptr);

protected:
    QSize sectionSizeFromContents(int logicalIndex) const override;
};

} // namespace ifs
