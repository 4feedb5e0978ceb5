#include "transforms/stepdelegate.h"

#include "transforms/pipelinemodel.h"

#include <QApplication>
#include <QPainter>

#include <algorithm>

namespace ifs {

void StepDelegate::paint(QPainter *painter, const QStyleOptionViewItem &option,
                         const QModelIndex &index) const
{
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    const QIcon marker = opt.icon;
    opt.text.clear();
    opt.icon = QIcon();
    opt.features &= ~QStyleOptionViewItem::HasDecoration;
    const QWidget *widget = opt.widget;
    QStyle *style = widget ? widget->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, widget);

    const QRect check = style->subElementRect(QStyle::SE_ItemViewItemCheckIndicator, &opt, widget);
    QRect area
        = opt.rect.adjusted(check.isValid() ? check.right() - opt.rect.left() + 8 : 6, 0, -6, 0);
    const bool enabled = index.data(PipelineModel::EnabledRole).toBool();
    const bool selected = opt.state & QStyle::State_Selected;
    const QPalette::ColorGroup group = enabled ? QPalette::Normal : QPalette::Disabled;
    const QColor text
        = opt.palette.color(group, selected ? QPalette::HighlightedText : QPalette::Text);
    QColor dim = text;
    dim.setAlphaF(selected ? 0.8 : 0.6);

    painter->save();
    // Right side: the marker of the worst finding, then a "random" tag.
    if (!marker.isNull()) {
        const int s = 16;
        const QRect iconRect(area.right() - s, area.center().y() - s / 2, s, s);
        marker.paint(painter, iconRect);
        area.setRight(iconRect.left() - 6);
    }
    QFont small = opt.font;
    small.setPointSizeF(small.pointSizeF() * 0.85);
    if (index.data(PipelineModel::RandomRole).toBool()) {
        const QString tag = QObject::tr("random");
        const QFontMetrics fm(small);
        const int w = fm.horizontalAdvance(tag) + 10;
        const QRect tagRect(area.right() - w, area.center().y() - fm.height() / 2 - 1, w,
                            fm.height() + 2);
        painter->setPen(Qt::NoPen);
        painter->setBrush(enabled ? QColor(0x4c, 0x9b, 0xe8, 60) : QColor(128, 128, 128, 40));
        painter->setRenderHint(QPainter::Antialiasing);
        painter->drawRoundedRect(tagRect, 4, 4);
        painter->setFont(small);
        painter->setPen(dim);
        painter->drawText(tagRect, Qt::AlignCenter, tag);
        area.setRight(tagRect.left() - 6);
    }

    // Left side: number, name, arguments.
    int number = 0;
    for (int row = 0; row <= index.row(); ++row)
        if (index.model()->index(row, 0).data(PipelineModel::EnabledRole).toBool())
            ++number;
    QFont font = opt.font;
    font.setItalic(!enabled);
    const QFontMetrics fm(font);
    const QString numberText = enabled ? QStringLiteral("%1.").arg(number) : QStringLiteral("–");
    painter->setFont(font);
    painter->setPen(dim);
    const int numberWidth = fm.horizontalAdvance(QStringLiteral("00."));
    painter->drawText(QRect(area.left(), area.top(), numberWidth, area.height()),
                      Qt::AlignVCenter | Qt::AlignRight, numberText);
    area.setLeft(area.left() + numberWidth + 8);

    QFont bold = font;
    bold.setBold(true);
    const QFontMetrics boldMetrics(bold);
    const QString name = index.data(PipelineModel::NameRole).toString();
    const QString nameText = boldMetrics.elidedText(name, Qt::ElideRight, area.width());
    painter->setFont(bold);
    painter->setPen(text);
    painter->drawText(area, Qt::AlignVCenter | Qt::AlignLeft, nameText);
    area.setLeft(area.left() + boldMetrics.horizontalAdvance(nameText) + 8);

    const QString args = index.data(PipelineModel::ArgumentsRole).toString();
    if (!args.isEmpty() && area.width() > 20) {
        painter->setFont(font);
        painter->setPen(dim);
        painter->drawText(area, Qt::AlignVCenter | Qt::AlignLeft,
                          fm.elidedText(args, Qt::ElideRight, area.width()));
    }
    painter->restore();
}

QSize StepDelegate::sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const
{
    QSize size = QStyledItemDelegate::sizeHint(option, index);
    size.setHeight(std::max(size.height(), option.fontMetrics.height() * 2));
    return size;
}

} // namespace ifs
