export const message = 'Fresh from the laptop: this cart is running on your own machine (webpack).';
